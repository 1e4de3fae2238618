/**
 * Spend over a rolling window, kept in 60 buckets of window/60 each: a
 * reservation goes into the current bucket, buckets older than the window
 * drop out. In memory by default; in Redis the check-and-reserve is one Lua
 * script, so replicas share one budget and two of them cannot both take the
 * last euro.
 */
import type { Redis } from 'ioredis';

/** Buckets per window. */
export const BUCKETS = 60;

/** Outcome of a reservation. */
export type Reservation = { ok: true; bucket: number; spent: number } | { ok: false; spent: number; retryAfterMs: number };

export interface SpendStore {
  /** Adds `amount` to the current bucket if the window's spend stays within `budget`. */
  reserve(amount: number, budget: number, now: number): Promise<Reservation>;
  /** Corrects a reservation made into `bucket` by `delta` (actual − estimate). */
  adjust(bucket: number, delta: number): Promise<void>;
  /** The window's spend. */
  spent(now: number): Promise<number>;
}

/** When enough old buckets will have left the window for `amount` to fit. */
function retryAfter(buckets: [number, number][], total: number, amount: number, budget: number, bucketMs: number, now: number): number {
  let left = total;
  for (const [b, v] of buckets.sort((x, y) => x[0] - y[0])) {
    left -= v;
    if (left + amount <= budget) return Math.max(1, (b + BUCKETS) * bucketMs - now);
  }
  return BUCKETS * bucketMs; // it will not fit even in an empty window
}

export class MemorySpendStore implements SpendStore {
  readonly #bucketMs: number;
  readonly #buckets = new Map<number, number>();

  constructor(windowMs: number) {
    this.#bucketMs = windowMs / BUCKETS;
  }

  #live(now: number): [number, number][] {
    const current = Math.floor(now / this.#bucketMs);
    for (const b of this.#buckets.keys()) if (b <= current - BUCKETS) this.#buckets.delete(b);
    return [...this.#buckets.entries()];
  }

  reserve(amount: number, budget: number, now: number): Promise<Reservation> {
    const live = this.#live(now);
    const total = live.reduce((s, [, v]) => s + v, 0);
    if (amount > 0 && total + amount > budget) {
      return Promise.resolve({ ok: false, spent: total, retryAfterMs: retryAfter(live, total, amount, budget, this.#bucketMs, now) });
    }
    const bucket = Math.floor(now / this.#bucketMs);
    this.#buckets.set(bucket, (this.#buckets.get(bucket) ?? 0) + amount);
    return Promise.resolve({ ok: true, bucket, spent: total + amount });
  }

  adjust(bucket: number, delta: number): Promise<void> {
    if (this.#buckets.has(bucket)) this.#buckets.set(bucket, this.#buckets.get(bucket)! + delta);
    return Promise.resolve();
  }

  spent(now: number): Promise<number> {
    return Promise.resolve(this.#live(now).reduce((s, [, v]) => s + v, 0));
  }
}

// KEYS[1] hash bucket → spend. ARGV: current bucket, amount, budget, ttl ms.
// Returns {1, spent} or {0, spent, oldest bucket whose expiry lets it fit (-1: never)}.
const RESERVE = `
local current = tonumber(ARGV[1])
local amount = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
local all = redis.call('HGETALL', KEYS[1])
local total = 0
local live = {}
for i = 1, #all, 2 do
  local b = tonumber(all[i])
  local v = tonumber(all[i + 1])
  if b <= current - ${BUCKETS} then
    redis.call('HDEL', KEYS[1], all[i])
  else
    total = total + v
    live[#live + 1] = {b, v}
  end
end
if amount > 0 and total + amount > budget then
  table.sort(live, function(x, y) return x[1] < y[1] end)
  local left = total
  for _, e in ipairs(live) do
    left = left - e[2]
    if left + amount <= budget then return {0, tostring(total), e[1]} end
  end
  return {0, tostring(total), -1}
end
if amount ~= 0 then redis.call('HINCRBYFLOAT', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1, tostring(total + amount)}
`;

// KEYS[1] hash. ARGV: bucket, delta. Only adjusts a bucket still in the window.
const ADJUST = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('HINCRBYFLOAT', KEYS[1], ARGV[1], ARGV[2]) end
return 1
`;

type Cmd = (key: string, ...args: (string | number)[]) => Promise<unknown>;

export class RedisSpendStore implements SpendStore {
  readonly #redis: Redis & { candelaReserve?: Cmd; candelaAdjust?: Cmd };
  readonly #key: string;
  readonly #bucketMs: number;

  constructor(redis: Redis, prefix: string, windowMs: number) {
    this.#redis = redis;
    this.#key = `${prefix}breaker:spend`;
    this.#bucketMs = windowMs / BUCKETS;
    redis.defineCommand('candelaReserve', { numberOfKeys: 1, lua: RESERVE });
    redis.defineCommand('candelaAdjust', { numberOfKeys: 1, lua: ADJUST });
  }

  async reserve(amount: number, budget: number, now: number): Promise<Reservation> {
    const bucket = Math.floor(now / this.#bucketMs);
    const res = (await this.#redis.candelaReserve!(this.#key, bucket, amount, budget, Math.ceil(this.#bucketMs * (BUCKETS + 1)))) as [number, string, number?];
    const spent = Number(res[1]);
    if (res[0] === 1) return { ok: true, bucket, spent };
    const b = Number(res[2]);
    return { ok: false, spent, retryAfterMs: b < 0 ? BUCKETS * this.#bucketMs : Math.max(1, (b + BUCKETS) * this.#bucketMs - now) };
  }

  async adjust(bucket: number, delta: number): Promise<void> {
    if (delta !== 0) await this.#redis.candelaAdjust!(this.#key, bucket, delta);
  }

  async spent(now: number): Promise<number> {
    const res = await this.reserve(0, Number.MAX_VALUE, now);
    return res.spent;
  }
}
