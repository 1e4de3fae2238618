/**
 * The shared cache store. Redis holds the entries (with their TTL), the
 * exact keys, an age index for eviction and a change stream; every replica
 * keeps its own native vector index of the questions in sync by reading the
 * stream, so a semantic lookup is a local search plus one MGET.
 *
 *   <p>e:<id>      entry JSON (question, embedding, answer), expires with the TTL
 *   <p>x:<exact>   id of the entry for an exact key, same TTL
 *   <p>z           sorted set id → created ms: eviction order, and the list a replica loads at start
 *   <p>t:<tag>     ids carrying an invalidation tag
 *   <p>log         stream of put / del / flush events, capped
 *
 * A replica (re)loads everything at start and after every reconnect, then
 * tails the stream from where the load began, so nothing is missed.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { LocalIndex } from './local-index.ts';
import type { CacheEntry, CacheStore, NearestHit } from './store.ts';
import { base64ToFloat32, float32ToBase64 } from '../../util/vector-base64.ts';

/** Stream length kept for replicas that are catching up (a replica further behind reloads on reconnect). */
const LOG_MAX = 10_000;
const LOAD_BATCH = 500;

interface StoredEntry {
  scope: string;
  exact: string;
  query: string;
  tags: string[];
  emb: string;
  payload: unknown;
  createdAt: number;
  expiresAt: number;
}


export class RedisCacheStore implements CacheStore {
  readonly backend = 'redis' as const;
  readonly #redis: Redis;
  readonly #tail: Redis;
  readonly #p: string;
  readonly #maxEntries: number;
  readonly #logger: Logger;
  readonly #index = new LocalIndex();
  readonly #sweeper: NodeJS.Timeout;
  #lastId = '$';
  #closed = false;
  #syncing: Promise<void> | undefined;
  /** Resolves once the first load has finished (or failed). */
  readonly ready: Promise<void>;

  constructor(options: { redis: Redis; prefix: string; maxEntries: number; logger: Logger }) {
    this.#redis = options.redis;
    this.#p = `${options.prefix}cache:`;
    this.#maxEntries = options.maxEntries;
    this.#logger = options.logger;
    // Blocking reads need their own connection, with a timeout longer than the block.
    this.#tail = this.#redis.duplicate({ commandTimeout: 10_000, connectionName: 'candela-cache-tail' });
    this.#tail.on('error', () => {});
    this.#sweeper = setInterval(() => this.#index.sweep(Date.now()), 30_000).unref();
    // Loaded at the first connection and again after every reconnect: while
    // Redis was away this replica missed the stream.
    this.ready = new Promise<void>((resolve) => {
      const load = () => void this.resync().then(resolve);
      this.#redis.on('ready', load);
      if (this.#redis.status === 'ready') load();
      setTimeout(resolve, 3000).unref();
    });
    void this.#tailLoop();
  }

  /** Reloads this replica's index from Redis and continues the stream from there. */
  resync(): Promise<void> {
    this.#syncing ??= (async () => {
      try {
        const last = (await this.#redis.xrevrange(`${this.#p}log`, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
        const ids = await this.#redis.zrange(`${this.#p}z`, 0, -1);
        this.#index.clear();
        for (let i = 0; i < ids.length; i += LOAD_BATCH) {
          const batch = ids.slice(i, i + LOAD_BATCH);
          const raws = await this.#redis.mget(batch.map((id) => `${this.#p}e:${id}`));
          raws.forEach((raw, j) => {
            if (raw) {
              const e = JSON.parse(raw) as StoredEntry;
              this.#index.upsert(e.scope, batch[j]!, base64ToFloat32(e.emb), e.expiresAt);
            }
          });
        }
        this.#lastId = last;
        this.#logger.debug({ entries: this.#index.size }, 'cache index loaded from redis');
      } catch (err) {
        this.#logger.warn({ err: (err as Error).message }, 'cache index could not load from redis; retrying on reconnect');
      } finally {
        this.#syncing = undefined;
      }
    })();
    return this.#syncing;
  }

  async #tailLoop(): Promise<void> {
    while (!this.#closed) {
      try {
        if (this.#lastId === '$') {
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        const res = await this.#tail.xread('COUNT', 1000, 'BLOCK', 2000, 'STREAMS', `${this.#p}log`, this.#lastId);
        for (const [, events] of res ?? []) {
          for (const [id, fields] of events) {
            this.#apply(fields);
            this.#lastId = id;
          }
        }
      } catch {
        if (!this.#closed) await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  #apply(fields: string[]): void {
    const f: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
    if (f.op === 'put' && f.id && f.scope && f.emb) this.#index.upsert(f.scope, f.id, base64ToFloat32(f.emb), Number(f.exp));
    else if (f.op === 'del' && f.id) for (const id of f.id.split(',')) this.#index.remove(id);
    else if (f.op === 'flush') this.#index.clear();
  }

  #decode(id: string, raw: string | null): CacheEntry | undefined {
    if (!raw) return undefined;
    const e = JSON.parse(raw) as StoredEntry;
    if (e.expiresAt <= Date.now()) return undefined;
    return { id, scope: e.scope, exact: e.exact, query: e.query, tags: e.tags, embedding: base64ToFloat32(e.emb), payload: e.payload, createdAt: e.createdAt, expiresAt: e.expiresAt };
  }

  async getExact(exact: string): Promise<CacheEntry | undefined> {
    const id = await this.#redis.get(`${this.#p}x:${exact}`);
    if (!id) return undefined;
    const e = this.#decode(id, await this.#redis.get(`${this.#p}e:${id}`));
    return e?.exact === exact ? e : undefined;
  }

  async nearest(scope: string, embedding: Float32Array, minScore: number, accept: (e: CacheEntry) => boolean): Promise<NearestHit | undefined> {
    const hits = this.#index.search(scope, embedding, minScore);
    if (hits.length === 0) return undefined;
    const raws = await this.#redis.mget(hits.map((h) => `${this.#p}e:${h.id}`));
    for (const [i, h] of hits.entries()) {
      const entry = this.#decode(h.id, raws[i] ?? null);
      if (!entry) {
        this.#index.remove(h.id); // expired or evicted by another replica
        continue;
      }
      if (entry.scope === scope && accept(entry)) return { entry, score: h.score };
    }
    return undefined;
  }

  async put(entry: CacheEntry): Promise<void> {
    const ttl = Math.max(1, entry.expiresAt - Date.now());
    const stored: StoredEntry = {
      scope: entry.scope,
      exact: entry.exact,
      query: entry.query,
      tags: entry.tags,
      emb: float32ToBase64(entry.embedding),
      payload: entry.payload,
      createdAt: entry.createdAt,
      expiresAt: entry.expiresAt,
    };
    const m = this.#redis.multi();
    m.set(`${this.#p}e:${entry.id}`, JSON.stringify(stored), 'PX', ttl);
    m.set(`${this.#p}x:${entry.exact}`, entry.id, 'PX', ttl);
    m.zadd(`${this.#p}z`, entry.createdAt, entry.id);
    for (const t of entry.tags) {
      m.sadd(`${this.#p}t:${t}`, entry.id);
      m.pexpire(`${this.#p}t:${t}`, ttl);
    }
    m.xadd(`${this.#p}log`, 'MAXLEN', '~', LOG_MAX, '*', 'op', 'put', 'id', entry.id, 'scope', entry.scope, 'exp', String(entry.expiresAt), 'emb', stored.emb);
    m.zcard(`${this.#p}z`);
    const res = await m.exec();
    this.#index.upsert(entry.scope, entry.id, entry.embedding, entry.expiresAt);
    const count = Number(res?.at(-1)?.[1] ?? 0);
    if (count > this.#maxEntries) {
      const popped = (await this.#redis.zpopmin(`${this.#p}z`, count - this.#maxEntries)).filter((_, i) => i % 2 === 0);
      await this.#delete(popped);
    }
  }

  async #delete(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const m = this.#redis.multi();
    m.unlink(...ids.map((id) => `${this.#p}e:${id}`));
    m.zrem(`${this.#p}z`, ...ids);
    m.xadd(`${this.#p}log`, 'MAXLEN', '~', LOG_MAX, '*', 'op', 'del', 'id', ids.join(','));
    await m.exec();
    for (const id of ids) this.#index.remove(id);
  }

  async invalidateTag(tag: string): Promise<number> {
    const key = `${this.#p}t:${tag}`;
    const ids = await this.#redis.smembers(key);
    for (let i = 0; i < ids.length; i += LOAD_BATCH) await this.#delete(ids.slice(i, i + LOAD_BATCH));
    await this.#redis.unlink(key);
    return ids.length;
  }

  async flush(): Promise<number> {
    const n = this.#index.size;
    let cursor = '0';
    do {
      const [next, keys] = await this.#redis.scan(cursor, 'MATCH', `${this.#p}*`, 'COUNT', 1000);
      if (keys.length > 0) await this.#redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
    await this.#redis.xadd(`${this.#p}log`, 'MAXLEN', '~', LOG_MAX, '*', 'op', 'flush');
    this.#index.clear();
    return n;
  }

  size(): number {
    return this.#index.size;
  }

  close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#tail.disconnect();
    return Promise.resolve();
  }
}
