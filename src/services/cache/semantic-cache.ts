/**
 * The semantic cache: an exact-match fast path (hash of scope + normalised
 * question, before any embedding), then the nearest cached question of the
 * same scope at or above the similarity threshold.
 *
 * The store may live in Redis. A breaker guards that path: after a few
 * failures in a row the cache is skipped (every lookup a miss, nothing
 * stored) for a short cool-down, then one call tries again. Requests never
 * fail because the cache did; the failures are logged and counted.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { exactKey, negationCount, scopeId, scopeTags, type CacheScope } from './scope.ts';
import type { CacheStore } from './store.ts';

/** How a lookup ended. */
export type CacheOutcome = 'exact' | 'semantic' | 'miss';

/** A cache hit. */
export interface CacheHit<T> {
  kind: 'exact' | 'semantic';
  payload: T;
  /** The cached question that matched. */
  query: string;
  /** Cosine similarity (1 for exact hits). */
  score: number;
  createdAt: number;
}

/** What the cache reports to metrics. */
export interface CacheObserver {
  lookup(outcome: CacheOutcome, seconds: number): void;
  error(op: string): void;
}

/** Options of {@link SemanticCache}. */
export interface SemanticCacheOptions {
  store: CacheStore;
  threshold: number;
  ttlS: number;
  logger: Logger;
  observer?: CacheObserver;
  /** Failures in a row that open the cache breaker, and how long it stays open. */
  failuresToOpen?: number;
  coolDownMs?: number;
}

export class SemanticCache {
  readonly store: CacheStore;
  readonly threshold: number;
  readonly #o: SemanticCacheOptions;
  #failures = 0;
  #openUntil = 0;
  #probing = false;

  constructor(options: SemanticCacheOptions) {
    this.#o = options;
    this.store = options.store;
    this.threshold = options.threshold;
  }

  /** closed: in use; open: skipped after failures; half-open: one call is trying it again. */
  get state(): 'closed' | 'open' | 'half-open' {
    if (this.#openUntil === 0) return 'closed';
    return Date.now() < this.#openUntil ? 'open' : 'half-open';
  }

  /** Runs `op` against the store unless the breaker is open; failures count and return `fallback`. */
  async #guard<T>(opName: string, op: () => Promise<T>, fallback: T): Promise<T> {
    const state = this.state;
    if (state === 'open' || (state === 'half-open' && this.#probing)) return fallback;
    const probe = state === 'half-open';
    if (probe) this.#probing = true;
    try {
      const out = await op();
      if (this.#openUntil !== 0) this.#o.logger.info('cache store reachable again; cache back in use');
      this.#failures = 0;
      this.#openUntil = 0;
      return out;
    } catch (err) {
      this.#failures++;
      this.#o.observer?.error(opName);
      if (probe || this.#failures >= (this.#o.failuresToOpen ?? 3)) {
        if (this.#openUntil === 0 || probe) this.#o.logger.warn({ err: (err as Error).message, op: opName }, 'cache store failing; serving without the cache');
        this.#openUntil = Date.now() + (this.#o.coolDownMs ?? 2000);
      }
      return fallback;
    } finally {
      if (probe) this.#probing = false;
    }
  }

  /** The exact-match path: no embedding needed. */
  async exact<T>(scope: CacheScope, query: string): Promise<CacheHit<T> | undefined> {
    const t = performance.now();
    const e = await this.#guard('get_exact', () => this.store.getExact(exactKey(scopeId(scope), query)), undefined);
    if (e) this.#o.observer?.lookup('exact', (performance.now() - t) / 1000);
    return e && { kind: 'exact', payload: e.payload as T, query: e.query, score: 1, createdAt: e.createdAt };
  }

  /** The semantic path: the nearest cached question of the scope at or above the threshold (counts a miss otherwise). */
  async semantic<T>(scope: CacheScope, query: string, embedding: Float32Array): Promise<CacheHit<T> | undefined> {
    const t = performance.now();
    const negations = negationCount(query);
    const hit = await this.#guard(
      'nearest',
      () => this.store.nearest(scopeId(scope), embedding, this.threshold, (e) => negationCount(e.query) === negations),
      undefined,
    );
    this.#o.observer?.lookup(hit ? 'semantic' : 'miss', (performance.now() - t) / 1000);
    return hit && { kind: 'semantic', payload: hit.entry.payload as T, query: hit.entry.query, score: hit.score, createdAt: hit.entry.createdAt };
  }

  /** Stores a completed answer. */
  async put(scope: CacheScope, query: string, embedding: Float32Array, payload: unknown): Promise<void> {
    const now = Date.now();
    const sid = scopeId(scope);
    await this.#guard(
      'put',
      () =>
        this.store.put({
          id: randomUUID(),
          scope: sid,
          exact: exactKey(sid, query),
          query,
          tags: scopeTags(scope),
          embedding,
          payload,
          createdAt: now,
          expiresAt: now + this.#o.ttlS * 1000,
        }),
      undefined,
    );
  }

  /** Drops the entries grounded on a corpus version. */
  invalidateCorpus(version: string): Promise<number> {
    return this.#guard('invalidate', () => this.store.invalidateTag(`corpus:${version}`), 0);
  }

  /** Drops every entry (admin). Unlike lookups this reports a failing store to the caller. */
  flush(): Promise<number> {
    return this.store.flush();
  }

  stats(): { backend: string; entries: number; threshold: number; ttl_s: number; store_state: string } {
    return { backend: this.store.backend, entries: this.store.size(), threshold: this.threshold, ttl_s: this.#o.ttlS, store_state: this.state };
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
