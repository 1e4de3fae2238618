/**
 * The cost circuit breaker. Before a generation runs, its worst-case cost
 * is reserved against the budget of the rolling window; afterwards the
 * reservation is reconciled with what it really used (cancelled and failed
 * generations too: their tokens were spent).
 *
 * States: closed (reservations go through), open (the budget is spent:
 * rejected without asking the store until the window has rolled enough),
 * half-open (after that, one reservation at a time tries again; its success
 * closes the breaker). With Redis the spend is shared; if Redis is away the
 * breaker keeps counting in memory rather than letting spend go unchecked.
 */
import type { Logger } from 'pino';
import type { Pricing } from './pricing.ts';
import { MemorySpendStore, type SpendStore } from './spend-store.ts';

/** The budget is spent: 503 with Retry-After. */
export class BudgetExceededError extends Error {
  override name = 'BudgetExceededError';
  readonly retryAfterS: number;
  constructor(message: string, retryAfterS: number) {
    super(message);
    this.retryAfterS = retryAfterS;
  }
}

export type BreakerState = 'closed' | 'open' | 'half-open';

/** What the breaker reports to metrics. */
export interface BreakerObserver {
  rejected(): void;
  spent(amount: number): void;
  storeError(): void;
}

/** A reservation to settle once the generation has finished. */
export interface CostTicket {
  settle(usage: { promptTokens: number; completionTokens: number; engineMs: number }): Promise<void>;
}

export interface CostBreakerOptions {
  store: SpendStore;
  pricing: Pricing;
  /** Budget per window; 0 turns the breaker off. */
  budget: number;
  windowS: number;
  logger: Logger;
  observer?: BreakerObserver;
  /** Whether cache hits are still served while the breaker is open (default true). */
  servesCache?: boolean;
  now?: () => number;
}

const FREE: CostTicket = { settle: () => Promise.resolve() };

export class CostBreaker {
  readonly #o: CostBreakerOptions;
  readonly #fallback: MemorySpendStore;
  readonly #now: () => number;
  #openUntil = 0;
  #probing = false;
  #lastSpent = 0;
  #rejections = 0;

  constructor(options: CostBreakerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#fallback = new MemorySpendStore(options.windowS * 1000);
  }

  get enabled(): boolean {
    return this.#o.budget > 0;
  }

  /**
   * Whether a call to an encoder (embed, rerank) is charged: only when the
   * breaker is on and `model` has a price of its own. The default price is
   * per prompt and completion token of generations.
   */
  charges(model: string): boolean {
    return this.enabled && this.#o.pricing.has(model);
  }

  get state(): BreakerState {
    if (this.#openUntil === 0) return 'closed';
    return this.#now() < this.#openUntil ? 'open' : 'half-open';
  }

  /** Runs `op` on the configured store, or on the in-memory one while that fails; says which answered. */
  async #store<T>(op: (s: SpendStore) => Promise<T>): Promise<[T, SpendStore]> {
    try {
      return [await op(this.#o.store), this.#o.store];
    } catch (err) {
      this.#o.observer?.storeError();
      this.#o.logger.warn({ err: (err as Error).message }, 'spend store unavailable; counting this replica’s spend in memory');
      return [await op(this.#fallback), this.#fallback];
    }
  }

  #reject(retryAfterMs: number, spent: number): never {
    this.#rejections++;
    this.#o.observer?.rejected();
    const s = Math.max(1, Math.ceil(retryAfterMs / 1000));
    throw new BudgetExceededError(`the cost budget of ${this.#o.budget} per ${this.#o.windowS} s is spent (${spent.toFixed(4)} used); retry in ${s} s`, s);
  }

  /** Before a cache lookup: refuses it too when the breaker is open and is set not to serve the cache. */
  assertServesCache(): void {
    if (this.enabled && this.#o.servesCache === false && this.state === 'open') this.#reject(this.#openUntil - this.#now(), this.#lastSpent);
  }

  /** Reserves the estimated cost of a generation, or throws {@link BudgetExceededError}. */
  async reserve(model: string, promptTokens: number, maxTokens: number): Promise<CostTicket> {
    if (!this.enabled) return FREE;
    const now = this.#now();
    const state = this.state;
    if (state === 'open') this.#reject(this.#openUntil - now, this.#lastSpent);
    if (state === 'half-open' && this.#probing) this.#reject(1000, this.#lastSpent);
    const probe = state === 'half-open';
    if (probe) this.#probing = true;
    const estimate = this.#o.pricing.estimate(model, promptTokens, maxTokens);
    let res, store;
    try {
      [res, store] = await this.#store((s) => s.reserve(estimate, this.#o.budget, now));
    } finally {
      if (probe) this.#probing = false;
    }
    this.#lastSpent = res.spent;
    if (!res.ok) {
      if (this.#openUntil === 0) this.#o.logger.warn({ spent: res.spent, budget: this.#o.budget, retry_after_ms: res.retryAfterMs }, 'cost breaker open');
      this.#openUntil = now + res.retryAfterMs;
      this.#reject(res.retryAfterMs, res.spent);
    }
    if (this.#openUntil !== 0) this.#o.logger.info({ spent: res.spent }, 'cost breaker closed');
    this.#openUntil = 0;
    const bucket = res.bucket;
    let settled = false;
    return {
      settle: async (u) => {
        if (settled) return;
        settled = true;
        const actual = this.#o.pricing.actual(model, u.promptTokens, u.completionTokens, u.engineMs);
        this.#o.observer?.spent(actual);
        try {
          await store.adjust(bucket, actual - estimate);
        } catch {
          this.#o.observer?.storeError();
        }
      },
    };
  }

  /** The window's spend (asks the store). */
  async spent(): Promise<number> {
    if (!this.enabled) return 0;
    [this.#lastSpent] = await this.#store((s) => s.spent(this.#now()));
    return this.#lastSpent;
  }

  /** Last known figures, for /metrics and /health/stats without waiting on Redis. */
  snapshot(): { enabled: boolean; state: BreakerState; spent: number; budget: number; window_s: number; retry_after_s: number; rejections: number } {
    const state = this.state;
    return {
      enabled: this.enabled,
      state,
      spent: this.#lastSpent,
      budget: this.#o.budget,
      window_s: this.#o.windowS,
      retry_after_s: state === 'open' ? Math.ceil((this.#openUntil - this.#now()) / 1000) : 0,
      rejections: this.#rejections,
    };
  }
}
