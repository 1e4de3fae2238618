/**
 * The embedded cache store: entries in this process, questions in the
 * native index. Oldest entries go first when the store is full; expired
 * ones are dropped when met and by a periodic sweep.
 */
import { LocalIndex } from './local-index.ts';
import type { CacheEntry, CacheStore, NearestHit } from './store.ts';

export class MemoryCacheStore implements CacheStore {
  readonly backend = 'memory' as const;
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, CacheEntry>();
  readonly #exact = new Map<string, string>();
  readonly #tags = new Map<string, Set<string>>();
  readonly #index = new LocalIndex();
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: { maxEntries: number; now?: () => number; sweepMs?: number }) {
    this.#maxEntries = options.maxEntries;
    this.#now = options.now ?? Date.now;
    this.#sweeper = setInterval(() => this.#sweep(), options.sweepMs ?? 30_000).unref();
  }

  #live(id: string | undefined): CacheEntry | undefined {
    const e = id === undefined ? undefined : this.#entries.get(id);
    if (e && e.expiresAt <= this.#now()) {
      this.#remove(e.id);
      return undefined;
    }
    return e;
  }

  getExact(exact: string): Promise<CacheEntry | undefined> {
    return Promise.resolve(this.#live(this.#exact.get(exact)));
  }

  nearest(scope: string, embedding: Float32Array, minScore: number, accept: (e: CacheEntry) => boolean): Promise<NearestHit | undefined> {
    for (const h of this.#index.search(scope, embedding, minScore)) {
      const entry = this.#live(h.id);
      if (entry && accept(entry)) return Promise.resolve({ entry, score: h.score });
    }
    return Promise.resolve(undefined);
  }

  put(entry: CacheEntry): Promise<void> {
    const previous = this.#exact.get(entry.exact);
    if (previous !== undefined) this.#remove(previous);
    this.#entries.set(entry.id, entry);
    this.#exact.set(entry.exact, entry.id);
    for (const t of entry.tags) {
      let ids = this.#tags.get(t);
      if (!ids) this.#tags.set(t, (ids = new Set()));
      ids.add(entry.id);
    }
    this.#index.upsert(entry.scope, entry.id, entry.embedding, entry.expiresAt);
    const excess = this.#entries.size - this.#maxEntries;
    if (excess > 0) for (const id of this.#index.oldest(excess)) this.#remove(id);
    return Promise.resolve();
  }

  #remove(id: string): void {
    const e = this.#entries.get(id);
    if (!e) return;
    this.#entries.delete(id);
    if (this.#exact.get(e.exact) === id) this.#exact.delete(e.exact);
    for (const t of e.tags) {
      const ids = this.#tags.get(t);
      ids?.delete(id);
      if (ids?.size === 0) this.#tags.delete(t);
    }
    this.#index.remove(id);
  }

  #sweep(): void {
    for (const id of this.#index.sweep(this.#now())) this.#remove(id);
  }

  invalidateTag(tag: string): Promise<number> {
    const ids = [...(this.#tags.get(tag) ?? [])];
    for (const id of ids) this.#remove(id);
    return Promise.resolve(ids.length);
  }

  flush(): Promise<number> {
    const n = this.#entries.size;
    this.#entries.clear();
    this.#exact.clear();
    this.#tags.clear();
    this.#index.clear();
    return Promise.resolve(n);
  }

  size(): number {
    return this.#entries.size;
  }

  close(): Promise<void> {
    clearInterval(this.#sweeper);
    return Promise.resolve();
  }
}
