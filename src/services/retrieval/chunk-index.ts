/**
 * The document chunks' two indexes, kept in step: dense vectors in the
 * native SIMD index (one scope: documents have no partition of their own)
 * and chunk texts in a {@link Bm25Index}. Chunk ids are `docId:chunk`
 * (document ids never contain ':').
 *
 * Event-loop rule: a dense search over a large corpus runs on libuv's thread
 * pool ({@link VectorIndex.searchAsync}); below {@link SYNC_SEARCH_MAX}
 * chunks the scan takes well under a millisecond and runs in place, which
 * is cheaper than the hop. Writes are synchronous and O(1) amortised per
 * chunk (the native index appends; BM25 adds postings).
 */
import { VectorIndex } from '../../engine/index.ts';
import { Bm25Index } from './bm25.ts';

/** Largest corpus (chunks) searched on the event loop (about 0.5 ms at 384-d). */
export const SYNC_SEARCH_MAX = 10_000;

const SCOPE = 'documents';

/** A chunk to index: its text and its unit embedding. */
export interface IndexableChunk {
  text: string;
  embedding: Float32Array;
}

/** A chunk found by one of the indexes. */
export interface ChunkHit {
  docId: string;
  chunk: number;
  score: number;
}

export function chunkId(docId: string, chunk: number): string {
  return `${docId}:${chunk}`;
}

export function parseChunkId(id: string): { docId: string; chunk: number } {
  const at = id.lastIndexOf(':');
  return { docId: id.slice(0, at), chunk: Number(id.slice(at + 1)) };
}

export class ChunkIndex {
  /** Created with the first vector's dimension. */
  #dense: VectorIndex | undefined;
  readonly #bm25 = new Bm25Index();
  /** docId → chunk count, to remove a document's chunks. */
  readonly #docs = new Map<string, number>();

  /** Chunks indexed. */
  get size(): number {
    return this.#bm25.size;
  }

  /** Vector dimension, once a chunk was indexed. */
  get dim(): number | undefined {
    return this.#dense?.dim;
  }

  /** Indexes a document's chunks, replacing what it had. Throws (INVALID_INPUT) on a vector of another dimension. */
  set(docId: string, chunks: readonly IndexableChunk[]): void {
    const first = chunks[0];
    if (first) this.#dense ??= new VectorIndex(first.embedding.length);
    this.delete(docId);
    chunks.forEach((c, i) => {
      this.#dense!.upsert(SCOPE, chunkId(docId, i), c.embedding);
      this.#bm25.add(chunkId(docId, i), c.text);
    });
    this.#docs.set(docId, chunks.length);
  }

  delete(docId: string): boolean {
    const n = this.#docs.get(docId);
    if (n === undefined) return false;
    for (let i = 0; i < n; i++) {
      this.#dense?.remove(chunkId(docId, i));
      this.#bm25.remove(chunkId(docId, i));
    }
    this.#docs.delete(docId);
    return true;
  }

  /** The `k` (1..1000) chunks nearest to a unit query vector, best first (cosine). */
  async searchDense(query: Float32Array, k: number): Promise<ChunkHit[]> {
    const dense = this.#dense;
    if (!dense || this.size === 0) return [];
    const hits = this.size <= SYNC_SEARCH_MAX ? dense.search(SCOPE, query, k) : await dense.searchAsync(SCOPE, query, k);
    return hits.map((h) => ({ ...parseChunkId(h.id), score: h.score }));
  }

  /** The `k` best chunks for `query` by BM25, best first; chunks sharing no term with it are left out. */
  searchText(query: string, k: number): ChunkHit[] {
    return this.#bm25.search(query, k).map((h) => ({ ...parseChunkId(h.id), score: h.score }));
  }
}
