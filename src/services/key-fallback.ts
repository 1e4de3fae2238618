/**
 * Keeps API keys working through a key-store outage (Redis away): a key
 * the store verified within the grace period is accepted again without it.
 * While the store answers, it decides every time, so a revocation takes
 * effect on the next request; a key never seen before is refused (the
 * caller answers 503) until the store is back.
 */
import { createHash } from 'node:crypto';
import type { ApiKeyRecord, CreateKeyOptions, KeyStore } from './api-keys.ts';

const MAX_REMEMBERED = 10_000;

export class FallbackKeyStore implements KeyStore {
  readonly #inner: KeyStore;
  readonly #graceMs: number;
  readonly #now: () => number;
  /** sha256(key) → record and when the store last vouched for it. */
  readonly #recent = new Map<string, { record: ApiKeyRecord; at: number }>();

  constructor(inner: KeyStore, options: { graceMs?: number; now?: () => number } = {}) {
    this.#inner = inner;
    this.#graceMs = options.graceMs ?? 10 * 60_000;
    this.#now = options.now ?? Date.now;
  }

  async verify(key: string): Promise<ApiKeyRecord | undefined> {
    const digest = createHash('sha256').update(key).digest('hex');
    let record: ApiKeyRecord | undefined;
    try {
      record = await this.#inner.verify(key);
    } catch (err) {
      const seen = this.#recent.get(digest);
      if (seen && this.#now() - seen.at < this.#graceMs) return seen.record;
      throw err;
    }
    this.#recent.delete(digest);
    if (record) {
      this.#recent.set(digest, { record, at: this.#now() });
      if (this.#recent.size > MAX_REMEMBERED) this.#recent.delete(this.#recent.keys().next().value!);
    }
    return record;
  }

  create(opts: CreateKeyOptions): Promise<{ key: string; record: ApiKeyRecord }> {
    return this.#inner.create(opts);
  }

  list(): Promise<ApiKeyRecord[]> {
    return this.#inner.list();
  }

  async revoke(id: string): Promise<boolean> {
    const done = await this.#inner.revoke(id);
    for (const [d, s] of this.#recent) if (s.record.id === id) this.#recent.delete(d);
    return done;
  }
}
