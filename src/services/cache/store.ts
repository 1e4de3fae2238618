/** The cache's storage contract, shared by the in-memory and the Redis store. */

/** One cached answer and the question that produced it. */
export interface CacheEntry {
  id: string;
  /** Scope id (see scope.ts): partition of the semantic index. */
  scope: string;
  /** Exact-match key (scope + normalised question). */
  exact: string;
  query: string;
  /** Invalidation tags (tenant, corpus version). */
  tags: string[];
  /** The question's embedding (L2-normalised). */
  embedding: Float32Array;
  /** The answer, JSON-serialisable. */
  payload: unknown;
  createdAt: number;
  expiresAt: number;
}

/** A semantic match. */
export interface NearestHit {
  entry: CacheEntry;
  score: number;
}

/** Where entries live. Every method may throw when the backing service is away. */
export interface CacheStore {
  readonly backend: 'memory' | 'redis';
  getExact(exact: string): Promise<CacheEntry | undefined>;
  /** Best entry of `scope` at or above `minScore` that `accept` takes. */
  nearest(scope: string, embedding: Float32Array, minScore: number, accept: (e: CacheEntry) => boolean): Promise<NearestHit | undefined>;
  put(entry: CacheEntry): Promise<void>;
  /** Drops every entry carrying `tag`; resolves with how many. */
  invalidateTag(tag: string): Promise<number>;
  /** Drops everything; resolves with how many entries this replica knew of. */
  flush(): Promise<number>;
  /** Entries in this replica's index. */
  size(): number;
  close(): Promise<void>;
}
