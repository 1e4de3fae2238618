/**
 * The native vector index (semantic cache keys, document chunks): nearest neighbours by cosine
 * similarity (dot product of L2-normalised vectors) inside one scope. The
 * scan runs in Rust (int8 candidates rescored exactly in f32); every native
 * error becomes an {@link EngineError} (INVALID_INPUT for a wrong
 * dimension, a non-finite value, an empty id or k outside 1..1000).
 */
import type * as Native from '../../native/node/binding.d.ts';
import { binding } from './binding.ts';
import { native, nativeAsync } from './errors.ts';

/** A search result: entry id and cosine similarity, best first. */
export type IndexHit = Native.IndexHit;

export class VectorIndex {
  readonly #native: Native.VectorIndex;

  /**
   * @param dim vector dimension, fixed for the index's life.
   * @param scanThreads threads a large scope's scan may use (default: the
   *   available cores, at most 4; 1 keeps every search on the calling thread).
   */
  constructor(dim: number, scanThreads?: number) {
    const b = binding();
    this.#native = native(() => new b.VectorIndex(dim, scanThreads));
  }

  get dim(): number {
    return this.#native.dim;
  }

  /** Entries in all scopes. */
  get size(): number {
    return this.#native.size;
  }

  /** Inserts or replaces `id`; an id that lives in another scope moves to `scope`. */
  upsert(scope: string, id: string, vector: Float32Array): void {
    native(() => this.#native.upsert(scope, id, vector));
  }

  /** Removes `id` from whichever scope holds it. False if unknown. */
  remove(id: string): boolean {
    return this.#native.remove(id);
  }

  /** Removes every entry of `scope`; returns how many there were. */
  removeScope(scope: string): number {
    return this.#native.removeScope(scope);
  }

  /** Entries in `scope` (0 if unknown). */
  scopeSize(scope: string): number {
    return this.#native.scopeSize(scope);
  }

  clear(): void {
    this.#native.clear();
  }

  /** Approximate bytes held by the index (vectors, codes, ids). */
  memoryBytes(): number {
    return this.#native.memoryBytes();
  }

  /** The `k` entries of `scope` nearest to `vector`, best first, keeping scores >= `minScore`. */
  search(scope: string, vector: Float32Array, k: number, minScore?: number): IndexHit[] {
    return native(() => this.#native.search(scope, vector, k, minScore));
  }

  /**
   * {@link search} on libuv's thread pool, so a scan of a large scope never
   * stalls the event loop; same results, same error codes.
   */
  searchAsync(scope: string, vector: Float32Array, k: number, minScore?: number): Promise<IndexHit[]> {
    return nativeAsync(() => this.#native.searchAsync(scope, vector, k, minScore));
  }
}
