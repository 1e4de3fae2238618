/**
 * This replica's view of the cached questions: the native vector index
 * (partitioned by scope) plus each entry's expiry, oldest first, so expired
 * and surplus entries leave the index without a scan in JS.
 */
import { VectorIndex } from '../../engine/index.ts';

/** Candidates fetched per semantic lookup (the best may be expired or rejected). */
const CANDIDATES = 4;

export class LocalIndex {
  #index: VectorIndex | undefined;
  /** id → expiry (ms), in insertion order. */
  readonly #expiry = new Map<string, number>();

  get size(): number {
    return this.#expiry.size;
  }

  upsert(scope: string, id: string, embedding: Float32Array, expiresAt: number): void {
    this.#index ??= new VectorIndex(embedding.length);
    this.#index.upsert(scope, id, embedding);
    this.#expiry.delete(id);
    this.#expiry.set(id, expiresAt);
  }

  remove(id: string): void {
    if (this.#expiry.delete(id)) this.#index?.remove(id);
  }

  /** Ids of the nearest entries of `scope` at or above `minScore`, best first. */
  search(scope: string, embedding: Float32Array, minScore: number): { id: string; score: number }[] {
    if (!this.#index || this.#index.dim !== embedding.length) return [];
    return this.#index.search(scope, embedding, CANDIDATES, minScore);
  }

  /** Removes entries past their expiry; returns their ids. */
  sweep(now: number): string[] {
    const gone: string[] = [];
    for (const [id, exp] of this.#expiry) if (exp <= now) gone.push(id);
    for (const id of gone) this.remove(id);
    return gone;
  }

  /** The `n` oldest ids. */
  oldest(n: number): string[] {
    const out: string[] = [];
    for (const id of this.#expiry.keys()) {
      if (out.length >= n) break;
      out.push(id);
    }
    return out;
  }

  clear(): void {
    this.#index?.clear();
    this.#expiry.clear();
  }
}
