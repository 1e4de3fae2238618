/**
 * API keys: creation, listing, revocation and verification, kept either in a
 * JSON file (one server, CLI on the same machine) or in Redis (several
 * servers sharing one store).
 *
 * A key looks like `cdl_<id>_<secret>`: `id` is 12 random base62 characters
 * (public: it names the key in listings, logs and `revoke`), `secret` is 32
 * random bytes in base64url. Only the SHA-256 digest of the whole key is
 * stored; the plain key is returned once by {@link KeyStore.create} and never
 * stored or logged.
 *
 * Why a plain SHA-256 and not bcrypt/scrypt/argon2: slow password hashes exist
 * to make guessing low-entropy secrets (passwords people choose) expensive. A
 * key carries 256 random bits, so no amount of guessing against a leaked
 * digest can succeed, and a fast digest keeps verification (done on every
 * request) at microseconds.
 *
 * Scopes are independent of each other — `write` does not imply `read` — with
 * one exception: `admin` can do everything (see {@link hasScope}).
 */
import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { writeFileAtomic } from '../util/atomic-write.ts';

export const SCOPES = ['read', 'write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** A stored key: everything but the key itself. */
export interface ApiKeyRecord {
  id: string;
  name: string;
  tenant: string;
  scopes: Scope[];
  /** SHA-256 of the whole key, lowercase hex. */
  hash: string;
  created_at: string;
  revoked_at: string | null;
}

export interface CreateKeyOptions {
  name: string;
  scopes: Scope[];
  /** Defaults to `name`. */
  tenant?: string;
}

export interface KeyStore {
  /** Makes a new key; the plain `key` is in this answer only. */
  create(opts: CreateKeyOptions): Promise<{ key: string; record: ApiKeyRecord }>;
  /** Every key, revoked ones included, oldest first (keys made in the same millisecond in no set order). */
  list(): Promise<ApiKeyRecord[]>;
  /** Revokes a key; false when no key has this id (revoking twice is true and keeps the first time). */
  revoke(id: string): Promise<boolean>;
  /** The record of a valid, unrevoked key; undefined for anything else. */
  verify(key: string): Promise<ApiKeyRecord | undefined>;
}

/** Invalid options for a new key (bad name, tenant or scope). */
export class ApiKeyError extends Error {
  override name = 'ApiKeyError';
}

/** True when `record` grants `needed`: it lists that scope, or it has `admin`. */
export function hasScope(record: Pick<ApiKeyRecord, 'scopes'>, needed: Scope): boolean {
  return record.scopes.includes(needed) || record.scopes.includes('admin');
}

/** True when `s` names a scope. */
export function isScope(s: string): s is Scope {
  return (SCOPES as readonly string[]).includes(s);
}

/** Parses a comma-separated scope list ("read,write"); throws {@link ApiKeyError} on an unknown or empty list. */
export function parseScopes(text: string): Scope[] {
  const parts = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (parts.length === 0) throw new ApiKeyError(`no scopes given (choose from ${SCOPES.join(', ')})`);
  for (const p of parts) {
    if (!isScope(p)) throw new ApiKeyError(`unknown scope '${p}' (choose from ${SCOPES.join(', ')})`);
  }
  return normalizeScopes(parts as Scope[]);
}

/** The id part of a well-formed key, without looking anything up (for logs); undefined otherwise. */
export function keyId(key: string): string | undefined {
  return KEY_FORMAT.exec(key)?.[1];
}

const KEY_PREFIX = 'cdl_';
const ID_LENGTH = 12;
const SECRET_BYTES = 32;
const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
// 32 bytes in unpadded base64url are 43 characters.
const KEY_FORMAT = /^cdl_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$/;
const ID_FORMAT = /^[A-Za-z0-9]{12}$/;
/** Compared against when there is no record, so a miss costs what a hit costs. */
const DUMMY_DIGEST = randomBytes(32);
const LABEL_MAX = 100;

const RecordSchema = z.object({
  id: z.string().regex(ID_FORMAT),
  name: z.string(),
  tenant: z.string(),
  scopes: z.array(z.enum(SCOPES)),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  created_at: z.string(),
  revoked_at: z.string().nullable(),
});
const FileSchema = z.object({ keys: z.array(RecordSchema) });

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function newId(): string {
  let id = '';
  for (let i = 0; i < ID_LENGTH; i++) id += BASE62[randomInt(BASE62.length)];
  return id;
}

function normalizeScopes(scopes: readonly Scope[]): Scope[] {
  return SCOPES.filter((s) => scopes.includes(s));
}

function checkLabel(what: string, value: string): string {
  const v = value.trim();
  if (v === '') throw new ApiKeyError(`the key ${what} must not be empty`);
  if (v.length > LABEL_MAX) throw new ApiKeyError(`the key ${what} must be at most ${LABEL_MAX} characters`);
  if (/[\u0000-\u001f\u007f]/.test(v)) throw new ApiKeyError(`the key ${what} must not contain control characters`);
  return v;
}

/** A fresh key and its record (validating the options). */
function mintKey(opts: CreateKeyOptions): { key: string; record: ApiKeyRecord } {
  const name = checkLabel('name', opts.name);
  const tenant = checkLabel('tenant', opts.tenant ?? name);
  if (opts.scopes.length === 0) throw new ApiKeyError(`a key needs at least one scope (${SCOPES.join(', ')})`);
  for (const s of opts.scopes) {
    if (!isScope(s)) throw new ApiKeyError(`unknown scope '${String(s)}' (choose from ${SCOPES.join(', ')})`);
  }
  const id = newId();
  const key = `${KEY_PREFIX}${id}_${randomBytes(SECRET_BYTES).toString('base64url')}`;
  const record: ApiKeyRecord = {
    id,
    name,
    tenant,
    scopes: normalizeScopes(opts.scopes),
    hash: sha256(key).toString('hex'),
    created_at: new Date().toISOString(),
    revoked_at: null,
  };
  return { key, record };
}

/**
 * The verification shared by both stores. `lookup` gets the id of a
 * well-formed key. The key's digest is always computed and compared in
 * constant time — against a dummy when the key is malformed or its id unknown
 * — so the time taken does not tell which check failed.
 */
async function verifyWith(
  key: string,
  lookup: (id: string) => ApiKeyRecord | undefined | Promise<ApiKeyRecord | undefined>,
): Promise<ApiKeyRecord | undefined> {
  const digest = sha256(typeof key === 'string' ? key : '');
  const m = typeof key === 'string' ? KEY_FORMAT.exec(key) : null;
  const record = m ? await lookup(m[1]!) : undefined;
  const expected = record ? Buffer.from(record.hash, 'hex') : DUMMY_DIGEST;
  const same = expected.length === digest.length && timingSafeEqual(expected, digest);
  if (!record || !same || record.revoked_at !== null) return undefined;
  return { ...record, scopes: [...record.scopes] };
}

function copy(r: ApiKeyRecord): ApiKeyRecord {
  return { ...r, scopes: [...r.scopes] };
}

function byCreation(a: ApiKeyRecord, b: ApiKeyRecord): number {
  return a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : 0;
}

// ---------------------------------------------------------------------------
// File store

const LOCK_WAIT_MS = 10_000;
/** A lock file older than this is left over from a killed process. */
const LOCK_STALE_MS = 30_000;

/**
 * Keys in a JSON file, `{ "keys": [ApiKeyRecord...] }`, mode 0600. A missing
 * file means no keys.
 *
 * Writes are atomic (temp file, fsync, rename, fsync of the directory), and
 * read-modify-write cycles hold a lock file (`<file>.lock`), so the CLI and a
 * server may change keys at the same time without losing either change.
 *
 * Other processes' changes are seen at once: before each verify the file is
 * `stat`ed (one syscall, no read) and reloaded only when its inode, size or
 * mtime differ from the copy in memory. Every write renames a new file into
 * place, so the inode changes even when size and mtime happen not to.
 *
 * A file that cannot be parsed makes verify throw (fail closed) rather than
 * keep trusting an older copy that may still hold revoked keys.
 */
export class FileKeyStore implements KeyStore {
  readonly filePath: string;
  #records = new Map<string, ApiKeyRecord>();
  /** `ino:size:mtimeMs` of the loaded file, 'missing', or undefined before the first load. */
  #signature: string | undefined;
  /** Serializes this instance's writes (the lock file serializes processes). */
  #chain: Promise<unknown> = Promise.resolve();

  constructor(filePath: string) {
    this.filePath = path.resolve(filePath);
  }

  async create(opts: CreateKeyOptions): Promise<{ key: string; record: ApiKeyRecord }> {
    const minted = mintKey(opts);
    await this.#mutate((records) => {
      while (records.has(minted.record.id)) {
        // 62^12 ids make this practically unreachable; still, never overwrite a key.
        Object.assign(minted, mintKey(opts));
      }
      records.set(minted.record.id, minted.record);
      return true;
    });
    return { key: minted.key, record: copy(minted.record) };
  }

  list(): Promise<ApiKeyRecord[]> {
    return new Promise((resolve) => {
      this.#refresh();
      resolve([...this.#records.values()].map(copy).sort(byCreation));
    });
  }

  async revoke(id: string): Promise<boolean> {
    return this.#mutate((records) => {
      const r = records.get(id);
      if (!r) return false;
      if (r.revoked_at === null) records.set(id, { ...r, revoked_at: new Date().toISOString() });
      return true;
    });
  }

  async verify(key: string): Promise<ApiKeyRecord | undefined> {
    this.#refresh();
    return verifyWith(key, (id) => this.#records.get(id));
  }

  /** Nothing to release; here so both stores can be closed alike. */
  async close(): Promise<void> {}

  /** Reloads the file when it changed since the last load. */
  #refresh(): void {
    let sig: string;
    try {
      const st = statSync(this.filePath);
      sig = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      sig = 'missing';
    }
    if (sig === this.#signature) return;
    if (sig === 'missing') {
      this.#records = new Map();
      this.#signature = sig;
      return;
    }
    // Signature taken from the descriptor actually read, so a write landing
    // between stat and read is picked up by the next refresh.
    let fd: number;
    try {
      fd = openSync(this.filePath, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      this.#records = new Map();
      this.#signature = 'missing';
      return;
    }
    try {
      const st = fstatSync(fd);
      this.#records = this.#parse(readFileSync(fd, 'utf8'));
      this.#signature = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } finally {
      closeSync(fd);
    }
  }

  #parse(text: string): Map<string, ApiKeyRecord> {
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (e) {
      throw new Error(`API keys file ${this.filePath} is not valid JSON: ${(e as Error).message}`);
    }
    const parsed = FileSchema.safeParse(data);
    if (!parsed.success) {
      const msg = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      throw new Error(`API keys file ${this.filePath} is not valid: ${msg}`);
    }
    return new Map(parsed.data.keys.map((r) => [r.id, r]));
  }

  /** Runs `change` on the current records under the lock; writes them when it returns true. */
  async #mutate(change: (records: Map<string, ApiKeyRecord>) => boolean): Promise<boolean> {
    const run = this.#chain.then(async () => {
      await mkdir(path.dirname(this.filePath), { recursive: true });
      const release = await this.#lock();
      try {
        this.#signature = undefined; // always start from the file as it is now
        this.#refresh();
        const records = new Map(this.#records);
        const write = change(records);
        if (write) {
          await this.#write([...records.values()].sort(byCreation));
          this.#records = records;
          this.#signature = undefined;
          this.#refresh();
        }
        return write;
      } finally {
        await release();
      }
    });
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #write(records: ApiKeyRecord[]): Promise<void> {
    await writeFileAtomic(this.filePath, JSON.stringify({ keys: records }, null, 2) + '\n', { mode: 0o600 });
  }


  /** Takes `<file>.lock` (created exclusively); returns its release. */
  async #lock(): Promise<() => Promise<void>> {
    const lockPath = `${this.filePath}.lock`;
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        const fh = await open(lockPath, 'wx', 0o600);
        await fh.writeFile(String(process.pid));
        await fh.close();
        return () => unlink(lockPath).catch(() => undefined);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      try {
        if (Date.now() - statSync(lockPath).mtimeMs > LOCK_STALE_MS) {
          unlinkSync(lockPath);
          continue;
        }
      } catch {
        continue; // released meanwhile
      }
      if (Date.now() > deadline) {
        const holder = await readFile(lockPath, 'utf8').catch(() => '?');
        throw new Error(`API keys file ${this.filePath} is locked by process ${holder.trim() || '?'} (remove ${lockPath} if that process is gone)`);
      }
      await sleep(10 + randomInt(20));
    }
  }
}

// ---------------------------------------------------------------------------
// Redis store

/**
 * Keys in the Redis hash `${prefix}keys`: field = key id, value = the record
 * as JSON. verify is one HGET; every server sharing the Redis sees a change
 * at once. The client belongs to the caller (this class never closes it).
 */
export class RedisKeyStore implements KeyStore {
  readonly redis: Redis;
  readonly hashKey: string;

  constructor(redis: Redis, prefix: string) {
    this.redis = redis;
    this.hashKey = `${prefix}keys`;
  }

  async create(opts: CreateKeyOptions): Promise<{ key: string; record: ApiKeyRecord }> {
    for (;;) {
      const minted = mintKey(opts);
      // HSETNX: an id collision (practically impossible) never overwrites a key.
      if ((await this.redis.hsetnx(this.hashKey, minted.record.id, JSON.stringify(minted.record))) === 1) {
        return { key: minted.key, record: copy(minted.record) };
      }
    }
  }

  async list(): Promise<ApiKeyRecord[]> {
    const all = await this.redis.hgetall(this.hashKey);
    return Object.values(all)
      .map((v) => this.#parse(v))
      .sort(byCreation);
  }

  async revoke(id: string): Promise<boolean> {
    if (!ID_FORMAT.test(id)) return false;
    const raw = await this.redis.hget(this.hashKey, id);
    if (raw === null) return false;
    const r = this.#parse(raw);
    if (r.revoked_at === null) {
      await this.redis.hset(this.hashKey, id, JSON.stringify({ ...r, revoked_at: new Date().toISOString() }));
    }
    return true;
  }

  async verify(key: string): Promise<ApiKeyRecord | undefined> {
    return verifyWith(key, async (id) => {
      const raw = await this.redis.hget(this.hashKey, id);
      return raw === null ? undefined : this.#parse(raw);
    });
  }

  /** The client belongs to the caller; nothing to release here. */
  async close(): Promise<void> {}

  #parse(raw: string): ApiKeyRecord {
    const parsed = RecordSchema.safeParse(JSON.parse(raw));
    if (!parsed.success) throw new Error(`invalid API key record in Redis hash ${this.hashKey}: ${parsed.error.issues[0]?.message ?? ''}`);
    return parsed.data;
  }
}
