/**
 * An in-memory flat index of unit vectors (cosine = dot product), keyed by
 * document. A linear scan is exact and fast enough for a document corpus of
 * tens of thousands of chunks; the interface is the seam where a native
 * SIMD or HNSW index goes when it pays.
 */

/** One search hit. */
export interface Hit {
  docId: string;
  chunk: number;
  score: number;
}

export class FlatIndex {
  #docs = new Map<string, Float32Array[]>();

  /** Replaces a document's vectors. */
  set(docId: string, vectors: Float32Array[]): void {
    this.#docs.set(docId, vectors);
  }

  delete(docId: string): boolean {
    return this.#docs.delete(docId);
  }

  get size(): number {
    let n = 0;
    for (const v of this.#docs.values()) n += v.length;
    return n;
  }

  /** The `k` chunks most similar to `query`, best first. */
  search(query: Float32Array, k: number): Hit[] {
    const top: Hit[] = [];
    for (const [docId, vectors] of this.#docs) {
      vectors.forEach((v, chunk) => {
        let score = 0;
        for (let i = 0; i < v.length; i++) score += v[i]! * query[i]!;
        if (top.length < k || score > top[top.length - 1]!.score) {
          top.push({ docId, chunk, score });
          top.sort((a, b) => b.score - a.score);
          if (top.length > k) top.pop();
        }
      });
    }
    return top;
  }
}
