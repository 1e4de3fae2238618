/**
 * The Redis document store: Redis is the store of record for documents and
 * their vectors, and every replica follows a stream of changes into its
 * in-memory corpus, so all replicas answer from the same documents.
 *
 *   <p>d:<id>     the document (JSON, vectors in base64)
 *   <p>ids        sorted set id → revision of its last write (load order)
 *   <p>rev        revision: INCRed by every put and delete
 *   <p>epoch      random id of this data set, set by the first write (a Redis
 *                 that lost its data has another one, or none)
 *   <p>log        stream of `put`/`del` events carrying id, revision and epoch, capped
 *   <p>m:<name>   one-time markers (the demo corpus went in)
 *
 * A write is one Lua script (document, id set, revision and stream entry
 * together, atomically), so a write that returned is in Redis whole and a
 * write that failed left nothing. A replica loads everything at start
 * (revision and stream position read in the same MULTI as the id list),
 * then reads the stream with XREAD BLOCK from the last id it applied. Events
 * carry the revision: one at or below the replica's is skipped, one past the
 * next means the stream was trimmed beyond this replica (it reloads).
 * After any read error it re-checks revision and epoch before following on,
 * and reloads when Redis went backwards (restarted empty) or moved on too far.
 *
 * Connections: its own two, duplicated from the given client, neither of
 * which re-sends a command after a reconnect (a write answered 503 must not
 * land later by itself): one for writes, with the shared client's short
 * timeout so a hung Redis turns into a prompt 503; one for the follower's
 * blocking reads and for loads (large MGETs), with a longer one.
 *
 * Threading: one follower loop per store; the listener is called
 * synchronously from it and from `put`/`delete`, never concurrently.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  decodeDocument,
  DocumentStoreUnavailableError,
  encodeDocument,
  type DocumentChangeListener,
  type DocumentStore,
  type StoredDocument,
} from './document-store.ts';

/** Stream entries kept for replicas catching up; one further behind reloads. */
const LOG_MAX = 10_000;
const LOAD_BATCH = 100;
const READ_COUNT = 500;
const BLOCK_MS = 2000;
/** How long a write waits for this replica's follower to pass it (so its answer carries a caught-up revision). */
const CATCH_UP_MS = 1000;

// KEYS: doc, ids, rev, log, epoch. ARGV: id, json, ifAbsent (1/0), epoch candidate, log max.
const PUT = `
redis.replicate_commands() -- Redis 5/6: replicate effects (XADD * is not deterministic); a no-op from 7
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
local rev = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[2], rev, ARGV[1])
redis.call('SETNX', KEYS[5], ARGV[4])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'op', 'put', 'id', ARGV[1], 'rev', rev, 'epoch', redis.call('GET', KEYS[5]))
return rev`;

// KEYS: doc, ids, rev, log, epoch. ARGV: id, epoch candidate, log max.
const DELETE = `
redis.replicate_commands()
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
local rev = redis.call('INCR', KEYS[3])
redis.call('SETNX', KEYS[5], ARGV[2])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', 'op', 'del', 'id', ARGV[1], 'rev', rev, 'epoch', redis.call('GET', KEYS[5]))
return rev`;

interface ScriptedRedis {
  candelaDocPut(doc: string, ids: string, rev: string, log: string, epoch: string, id: string, json: string, ifAbsent: string, epochCandidate: string, logMax: number): Promise<number>;
  candelaDocDelete(doc: string, ids: string, rev: string, log: string, epoch: string, id: string, epochCandidate: string, logMax: number): Promise<number>;
}

type StreamEntry = [id: string, fields: string[]];

/** Options of {@link RedisDocumentStore}. */
export interface RedisDocumentStoreOptions {
  redis: Redis;
  /** Key prefix, e.g. `candela:docs:`. */
  prefix: string;
  logger: Logger;
  /** Stream entries kept (default 10,000); tests use a few to make a replica fall behind the trim. */
  logMax?: number;
  /**
   * Documents to import when Redis has never held any (revision 0): the data
   * directory of a server that ran without Redis, so turning Redis on keeps
   * the corpus. Ids already taken are left alone.
   */
  importFrom?: () => Promise<StoredDocument[]>;
}

export class RedisDocumentStore implements DocumentStore {
  readonly backend = 'redis' as const;
  readonly #redis: Redis;
  readonly #scripted: ScriptedRedis;
  readonly #tail: Redis;
  readonly #p: string;
  readonly #logger: Logger;
  readonly #logMax: number;
  readonly #importFrom: (() => Promise<StoredDocument[]>) | undefined;
  #listener: DocumentChangeListener = () => {};
  /** Revision applied here: every change up to it is in this replica's corpus. */
  #rev = 0;
  #epoch: string | null = null;
  /** Stream id of the last event read. */
  #lastId = '0-0';
  /** Revisions of this replica's own writes, applied ahead of the follower. */
  readonly #own = new Set<number>();
  #waiters: { rev: number; resolve: () => void }[] = [];
  #closed = false;
  #following: Promise<void> | undefined;

  constructor(options: RedisDocumentStoreOptions) {
    // Commands in flight when the connection drops fail instead of being sent again after the reconnect.
    const noResend = { maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false } as const;
    this.#redis = options.redis.duplicate({ ...noResend, connectionName: 'candela-docs' });
    this.#redis.on('error', () => {});
    this.#p = options.prefix;
    this.#logger = options.logger;
    this.#logMax = options.logMax ?? LOG_MAX;
    this.#importFrom = options.importFrom;
    this.#redis.defineCommand('candelaDocPut', { numberOfKeys: 5, lua: PUT });
    this.#redis.defineCommand('candelaDocDelete', { numberOfKeys: 5, lua: DELETE });
    this.#scripted = this.#redis as unknown as ScriptedRedis;
    // Blocking reads need their own connection, with a timeout longer than the block.
    this.#tail = options.redis.duplicate({ ...noResend, commandTimeout: BLOCK_MS + 8000, connectionName: 'candela-docs-tail' });
    this.#tail.on('error', () => {});
  }

  get revision(): number {
    return this.#rev;
  }

  async open(listener: DocumentChangeListener): Promise<void> {
    this.#listener = listener;
    await Promise.all([this.#connected(this.#redis, 2000), this.#connected(this.#tail, 2000)]);
    // Readiness waits for the corpus: keep trying while Redis is away at start.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#reload('start');
        break;
      } catch (err) {
        if (this.#closed) throw new Error('document store closed before it loaded', { cause: err });
        if (attempt === 0) this.#logger.warn({ err: (err as Error).message }, 'documents: waiting for redis to load the corpus');
        await sleep(500);
      }
    }
    this.#following = this.#follow();
    if (this.#rev === 0 && this.#importFrom) await this.#import(this.#importFrom);
  }

  /** Puts `source`'s documents into a Redis that never held any (see {@link RedisDocumentStoreOptions.importFrom}). */
  async #import(source: () => Promise<StoredDocument[]>): Promise<void> {
    const docs = await source();
    if (docs.length === 0) return;
    let imported = 0;
    for (const d of docs) if (await this.put(d, { ifAbsent: true })) imported++;
    this.#logger.info({ documents: imported, found: docs.length }, 'documents: imported the data directory into an empty redis');
  }

  async put(doc: StoredDocument, options: { ifAbsent?: boolean } = {}): Promise<boolean> {
    const k = this.#keys(doc.id);
    const rev = Number(
      await this.#write(() => this.#scripted.candelaDocPut(k.doc, k.ids, k.rev, k.log, k.epoch, doc.id, encodeDocument(doc), options.ifAbsent ? '1' : '0', randomUUID(), this.#logMax)),
    );
    if (rev === 0) return false;
    // Applied here at once (this replica reads its own write) unless the follower got there first.
    if (rev > this.#rev) {
      this.#own.add(rev);
      this.#listener({ op: 'put', doc });
    }
    await this.#caughtUp(rev);
    return true;
  }

  async delete(id: string): Promise<boolean> {
    const k = this.#keys(id);
    const rev = Number(await this.#write(() => this.#scripted.candelaDocDelete(k.doc, k.ids, k.rev, k.log, k.epoch, id, randomUUID(), this.#logMax)));
    if (rev === 0) return false;
    if (rev > this.#rev) {
      this.#own.add(rev);
      this.#listener({ op: 'delete', id });
    }
    await this.#caughtUp(rev);
    return true;
  }

  async hasMarker(name: string): Promise<boolean> {
    return (await this.#write(() => this.#redis.exists(`${this.#p}m:${name}`))) === 1;
  }

  async setMarker(name: string): Promise<void> {
    await this.#write(() => this.#redis.set(`${this.#p}m:${name}`, new Date().toISOString()));
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#tail.disconnect();
    this.#redis.disconnect();
    for (const w of this.#waiters) w.resolve();
    this.#waiters = [];
    await this.#following;
  }

  /** Resolves when `conn` is ready, or after `ms` (the load then fails and is retried). */
  #connected(conn: Redis, ms: number): Promise<void> {
    if (conn.status === 'ready') return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      conn.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #keys(id: string) {
    const p = this.#p;
    return { doc: `${p}d:${id}`, ids: `${p}ids`, rev: `${p}rev`, log: `${p}log`, epoch: `${p}epoch` };
  }

  /** Runs a Redis call; any failure to reach Redis becomes a 503-shaped error. */
  async #write<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw new DocumentStoreUnavailableError(
        `the document store (redis) is unavailable: ${(err as Error).message.replace(/\.$/, '')}. Nothing was acknowledged; if the request timed out it may have been applied, and a retry then answers 409 for an id that exists`,
        { cause: err },
      );
    }
  }

  /** Loads the whole corpus and the position to follow the stream from. */
  async #reload(why: string): Promise<void> {
    const started = performance.now();
    const res = await this.#tail
      .multi()
      .get(`${this.#p}rev`)
      .get(`${this.#p}epoch`)
      .zrange(`${this.#p}ids`, 0, -1)
      .xrevrange(`${this.#p}log`, '+', '-', 'COUNT', 1)
      .exec();
    if (!res) throw new Error('redis MULTI was aborted');
    for (const [err] of res) if (err) throw err;
    const rev = Number(res[0]![1] ?? 0);
    const epoch = res[1]![1] as string | null;
    const ids = res[2]![1] as string[];
    const last = (res[3]![1] as StreamEntry[])[0]?.[0] ?? '0-0';
    const docs: StoredDocument[] = [];
    for (let i = 0; i < ids.length; i += LOAD_BATCH) {
      const raws = await this.#tail.mget(ids.slice(i, i + LOAD_BATCH).map((id) => `${this.#p}d:${id}`));
      // A document deleted since the MULTI is skipped; its delete event follows anyway.
      for (const [j, raw] of raws.entries()) {
        const doc = raw ? this.#decode(ids[i + j]!, raw) : undefined;
        if (doc) docs.push(doc);
      }
    }
    this.#rev = rev;
    this.#epoch = epoch;
    this.#lastId = last;
    this.#own.clear();
    this.#listener({ op: 'reset', docs });
    this.#wake();
    this.#logger.info({ documents: docs.length, revision: rev, load_ms: Math.round(performance.now() - started), why }, 'documents loaded from redis');
  }

  /** Follows the stream until closed; after a read error, checks whether this replica must reload. */
  async #follow(): Promise<void> {
    let check = false;
    let down = false;
    while (!this.#closed) {
      try {
        if (check) {
          await this.#checkPosition();
          check = false;
          if (down) this.#logger.info('documents: following redis again');
          down = false;
        }
        const res = await this.#tail.xread('COUNT', READ_COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', `${this.#p}log`, this.#lastId);
        for (const [, entries] of res ?? []) await this.#apply(entries);
      } catch (err) {
        if (this.#closed) break;
        if (!down) this.#logger.warn({ err: (err as Error).message }, 'documents: lost the redis stream; serving the corpus in memory until it is back');
        down = true;
        check = true;
        await sleep(500);
      }
    }
  }

  /** Reloads when Redis lost its data (epoch or revision went backwards) or trimmed the stream past this replica. */
  async #checkPosition(): Promise<void> {
    const res = await this.#tail.multi().get(`${this.#p}rev`).get(`${this.#p}epoch`).xrange(`${this.#p}log`, '-', '+', 'COUNT', 1).exec();
    if (!res) throw new Error('redis MULTI was aborted');
    for (const [err] of res) if (err) throw err;
    const rev = Number(res[0]![1] ?? 0);
    const epoch = res[1]![1] as string | null;
    const first = (res[2]![1] as StreamEntry[])[0];
    const firstRev = first ? Number(fieldsOf(first[1]).rev) : undefined;
    if ((this.#rev > 0 && epoch !== this.#epoch) || rev < this.#rev) await this.#reload('redis lost its data (new epoch or lower revision)');
    else if (firstRev !== undefined && firstRev > this.#rev + 1) await this.#reload('the stream was trimmed past this replica');
  }

  async #apply(entries: StreamEntry[]): Promise<void> {
    const events = entries.map(([id, fields]) => ({ streamId: id, ...fieldsOf(fields) }));
    // One MGET for the documents this batch adds.
    const wanted = [...new Set(events.filter((e) => e.op === 'put' && e.rev > this.#rev && !this.#own.has(e.rev)).map((e) => e.id))];
    const raws = wanted.length > 0 ? await this.#tail.mget(wanted.map((id) => `${this.#p}d:${id}`)) : [];
    const fetched = new Map(wanted.map((id, i) => [id, raws[i] ?? null]));
    for (const e of events) {
      if (e.rev <= this.#rev) {
        this.#lastId = e.streamId;
        continue;
      }
      if (e.rev > this.#rev + 1) {
        await this.#reload(`revision gap: at ${this.#rev}, next event is ${e.rev}`);
        return;
      }
      if (!this.#own.delete(e.rev)) {
        if (e.op === 'del') this.#listener({ op: 'delete', id: e.id });
        else {
          const raw = fetched.get(e.id);
          // null: deleted again since; the delete event comes next.
          const doc = raw ? this.#decode(e.id, raw) : undefined;
          if (doc) this.#listener({ op: 'put', doc });
        }
      }
      this.#rev = e.rev;
      this.#epoch = e.epoch || this.#epoch;
      this.#lastId = e.streamId;
    }
    this.#wake();
  }

  /** A stored document, or undefined (logged) when its value is not one: one bad value must not stall the follower. */
  #decode(id: string, raw: string): StoredDocument | undefined {
    try {
      return decodeDocument(raw);
    } catch (err) {
      this.#logger.error({ id, err: (err as Error).message }, 'documents: unreadable document in redis; skipped');
      return undefined;
    }
  }

  #wake(): void {
    const ready = this.#waiters.filter((w) => w.rev <= this.#rev);
    this.#waiters = this.#waiters.filter((w) => w.rev > this.#rev);
    for (const w of ready) w.resolve();
  }

  /** Resolves once the follower has passed `rev` (bounded: the write is durable either way). */
  #caughtUp(rev: number): Promise<void> {
    if (this.#rev >= rev || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        this.#logger.debug({ revision: rev, applied: this.#rev }, 'documents: follower behind own write');
        resolve();
      }, CATCH_UP_MS);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#waiters.push({ rev, resolve: done });
    });
  }
}

function fieldsOf(fields: string[]): { op: string; id: string; rev: number; epoch: string } {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  return { op: f.op ?? '', id: f.id ?? '', rev: Number(f.rev ?? 0), epoch: f.epoch ?? '' };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
