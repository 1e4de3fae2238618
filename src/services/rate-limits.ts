/**
 * Rate limits per API key and per client IP, on requests and on generated
 * tokens per minute, with rate-limiter-flexible: counters in memory, or in
 * Redis (atomic there, so a limit holds across replicas). A Redis outage
 * falls back to an in-memory insurance limiter instead of failing requests.
 *
 * rate-limiter-flexible counts in fixed windows (here 60 s): a client gets
 * `limit` requests per window, the window restarting from its first request.
 * Generated tokens are charged after each generation; a client whose token
 * allowance is used up is refused until its window ends.
 */
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

const WINDOW_S = 60;

/** Who a request counts against. */
export interface Identity {
  /** API key id when the request carried a valid key. */
  keyId?: string | undefined;
  ip: string;
}

/** Figures for the RateLimit-* headers: the tightest limit that applied. */
export interface LimitState {
  limit: number;
  remaining: number;
  resetS: number;
}

/** Over a limit: 429. */
export class RateLimitedError extends Error {
  override name = 'RateLimitedError';
  readonly state: LimitState;
  readonly retryAfterS: number;
  constructor(message: string, state: LimitState, retryAfterS: number) {
    super(message);
    this.state = state;
    this.retryAfterS = retryAfterS;
  }
}

/** Limits per minute; 0 means none. */
export interface RateLimitSettings {
  keyRpm: number;
  keyTpm: number;
  ipRpm: number;
  ipTpm: number;
}

interface Limiter {
  what: string;
  points: number;
  rl: RateLimiterAbstract;
  subject: (id: Identity) => string | undefined;
}

export class RateLimits {
  readonly #requests: Limiter[] = [];
  readonly #tokens: Limiter[] = [];
  #onLimited: ((what: string) => void) | undefined;

  constructor(settings: RateLimitSettings, options: { redis?: Redis; prefix?: string; onLimited?: (what: string) => void } = {}) {
    this.#onLimited = options.onLimited;
    const make = (name: string, points: number): RateLimiterAbstract => {
      const memory = new RateLimiterMemory({ keyPrefix: name, points, duration: WINDOW_S });
      if (!options.redis) return memory;
      return new RateLimiterRedis({ storeClient: options.redis, keyPrefix: `${options.prefix ?? 'candela:'}rl:${name}`, points, duration: WINDOW_S, insuranceLimiter: memory });
    };
    const byKey = (id: Identity) => id.keyId;
    const byIp = (id: Identity) => id.ip;
    if (settings.keyRpm > 0) this.#requests.push({ what: 'requests per minute for this API key', points: settings.keyRpm, rl: make('key-req', settings.keyRpm), subject: byKey });
    if (settings.ipRpm > 0) this.#requests.push({ what: 'requests per minute from this address', points: settings.ipRpm, rl: make('ip-req', settings.ipRpm), subject: byIp });
    if (settings.keyTpm > 0) this.#tokens.push({ what: 'generated tokens per minute for this API key', points: settings.keyTpm, rl: make('key-tok', settings.keyTpm), subject: byKey });
    if (settings.ipTpm > 0) this.#tokens.push({ what: 'generated tokens per minute from this address', points: settings.ipTpm, rl: make('ip-tok', settings.ipTpm), subject: byIp });
  }

  get enabled(): boolean {
    return this.#requests.length + this.#tokens.length > 0;
  }

  #limited(l: Limiter, res: RateLimiterRes): never {
    this.#onLimited?.(l.what.includes('tokens') ? 'tokens' : 'requests');
    const retry = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
    throw new RateLimitedError(`rate limit reached: ${l.points} ${l.what}; retry in ${retry} s`, { limit: l.points, remaining: 0, resetS: retry }, retry);
  }

  /** Counts one request against every limit that applies; throws {@link RateLimitedError} when one is exceeded. */
  async request(id: Identity): Promise<LimitState | undefined> {
    let tightest: LimitState | undefined;
    for (const l of this.#requests) {
      const subject = l.subject(id);
      if (subject === undefined) continue;
      let res: RateLimiterRes;
      try {
        res = await l.rl.consume(subject);
      } catch (err) {
        if (err instanceof RateLimiterRes) this.#limited(l, err);
        throw err;
      }
      const state = { limit: l.points, remaining: res.remainingPoints, resetS: Math.ceil(res.msBeforeNext / 1000) };
      if (!tightest || state.remaining < tightest.remaining) tightest = state;
    }
    return tightest;
  }

  /** Refuses a generation when a token allowance is already used up. */
  async checkTokens(id: Identity): Promise<void> {
    for (const l of this.#tokens) {
      const subject = l.subject(id);
      if (subject === undefined) continue;
      const res = await l.rl.get(subject);
      if (res && res.consumedPoints >= l.points) this.#limited(l, res);
    }
  }

  /** Charges generated tokens after a generation. */
  async addTokens(id: Identity, tokens: number): Promise<void> {
    if (tokens <= 0) return;
    for (const l of this.#tokens) {
      const subject = l.subject(id);
      if (subject !== undefined) await l.rl.penalty(subject, tokens);
    }
  }
}
