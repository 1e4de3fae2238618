/**
 * Retrieval, the one implementation behind the RAG routes and
 * POST /v1/search: embed the query, take the nearest chunks from the dense
 * index, and in hybrid mode also the BM25 best, fused by reciprocal rank
 * fusion; then, when asked and a cross-encoder is loaded, rerank. Every
 * stage is timed.
 *
 * Hybrid is the default when no reranker is loaded: BM25 recovers exact
 * terms (names, identifiers, numbers) that a small embedder blurs. With a
 * reranker loaded the default stays dense, the cross-encoder then doing the
 * fine ordering.
 */
import type { DocumentService } from '../documents.ts';
import type { InferenceService, RequestContext } from '../inference.ts';
import type { ModelService } from '../model-service.ts';
import type { ChunkHit } from './chunk-index.ts';
import { chunkId, parseChunkId } from './chunk-index.ts';
import { reciprocalRankFusion } from './rrf.ts';

export const RETRIEVAL_MODES = ['dense', 'hybrid'] as const;
export type RetrievalMode = (typeof RETRIEVAL_MODES)[number];

/** Chunks each ranking contributes to the fusion at least (more when more are asked for). */
export const MIN_FUSION_DEPTH = 50;

/** Raised when retrieval cannot run (no embedding model ready, so no document service). */
export class RetrievalUnavailableError extends Error {
  override name = 'RetrievalUnavailableError';
}

/** Raised when a rerank is asked for and no cross-encoder is configured. */
export class RerankUnavailableError extends Error {
  override name = 'RerankUnavailableError';
}

/** Raised when a rerank is asked for and the configured cross-encoder is not ready (loading, or unloaded). */
export class RerankNotReadyError extends Error {
  override name = 'RerankNotReadyError';
}

/** A retrieval request. */
export interface RetrieveOptions {
  query: string;
  /** Chunks retrieved (and reranked, when reranking). */
  k: number;
  /** Chunks kept after reranking (default `k`). */
  keep?: number;
  /** Default: {@link Retriever.defaultMode}. */
  mode?: RetrievalMode | undefined;
  /** Rerank with the loaded cross-encoder; throws {@link RerankUnavailableError} when none is. */
  rerank?: boolean;
  /** The query's embedding when the caller already has it (the RAG pipeline's semantic cache needs it first). */
  vector?: Float32Array | undefined;
  /** Aborts the model calls when the client leaves. */
  signal?: AbortSignal | undefined;
  /** Who asks (token limits, metrics). */
  ctx?: RequestContext | undefined;
}

/** A retrieved chunk with every score that ranked it. */
export interface RetrievedChunk {
  docId: string;
  title: string;
  chunk: number;
  text: string;
  /** The score that decided the final order (rerank, else fused, else dense). */
  score: number;
  scores: {
    /** Cosine similarity to the query (computed for every hit, also those found by BM25 alone). */
    dense: number;
    /** BM25 score; null when not searched (dense mode) or the chunk shares no term with the query. */
    bm25: number | null;
    /** Reciprocal-rank-fusion score; null in dense mode. */
    fused: number | null;
    /** Cross-encoder logit; null when not reranked. */
    rerank: number | null;
  };
}

/** Milliseconds per stage (0 for a stage that did not run). */
export interface RetrievalTimings {
  embed_ms: number;
  dense_ms: number;
  bm25_ms: number;
  fuse_ms: number;
  rerank_ms: number;
}

export interface RetrievalResult {
  mode: RetrievalMode;
  reranked: boolean;
  /** Which models ran. */
  embedder: string;
  reranker: string | null;
  hits: RetrievedChunk[];
  timings: RetrievalTimings;
}

export class Retriever {
  readonly #models: ModelService;
  readonly #inference: InferenceService;
  readonly #documents: () => DocumentService | undefined;

  /** Model calls (query embedding, rerank) go through `inference`, the admission path. */
  constructor(options: { models: ModelService; inference: InferenceService; documents: () => DocumentService | undefined }) {
    this.#models = options.models;
    this.#inference = options.inference;
    this.#documents = options.documents;
  }

  /** The retrieval embedder's name (undefined when none is configured): the documents' embedder (BGE in the default set). */
  embedder(): string | undefined {
    return this.#documents()?.embedder ?? this.#models.embedderFor('retrieval')?.name;
  }

  /** The text the retrieval embedder wants before a query (BGE's instruction), or undefined. */
  queryInstruction(): string | undefined {
    const name = this.embedder();
    return this.#models.specs.find((s) => s.name === name)?.queryInstruction || undefined;
  }

  /** The cross-encoder, when one is configured and ready. */
  reranker(): string | undefined {
    const name = this.#models.defaultModel('reranker');
    return name && this.#models.isReady(name) ? name : undefined;
  }

  /** Hybrid without a reranker, dense with one. */
  defaultMode(): RetrievalMode {
    return this.reranker() ? 'dense' : 'hybrid';
  }

  /** The query's embedding as retrieval compares it. */
  async embedQuery(query: string, signal?: AbortSignal, ctx?: RequestContext): Promise<Float32Array> {
    const embedder = this.embedder();
    if (!embedder) throw new RetrievalUnavailableError('retrieval needs an embedding model, and none is configured');
    const [v] = await this.#inference.embed(embedder, [(this.queryInstruction() ?? '') + query], { truncate: true, signal }, ctx);
    return v!;
  }

  /** Retrieves (see the module docs). */
  async retrieve(o: RetrieveOptions): Promise<RetrievalResult> {
    const docs = this.#documents();
    const embedder = this.embedder();
    if (!docs || !embedder) throw new RetrievalUnavailableError('retrieval needs an embedding model, and none is ready');
    const reranker = o.rerank ? this.reranker() : undefined;
    if (o.rerank && !reranker) {
      const configured = this.#models.defaultModel('reranker');
      if (configured) throw new RerankNotReadyError(`rerank was asked for, and the reranker '${configured}' is not ready (loading or unloaded)`);
      throw new RerankUnavailableError('rerank was asked for, but no reranker (cross-encoder) is configured on this server');
    }
    const mode = o.mode ?? this.defaultMode();
    const timings: RetrievalTimings = { embed_ms: 0, dense_ms: 0, bm25_ms: 0, fuse_ms: 0, rerank_ms: 0 };
    let t = performance.now();
    const vector = o.vector ?? (await this.embedQuery(o.query, o.signal, o.ctx));
    timings.embed_ms = performance.now() - t;

    t = performance.now();
    const depth = mode === 'hybrid' ? Math.max(o.k, MIN_FUSION_DEPTH) : o.k;
    const dense = await docs.searchDense(o.query, depth, { vector, signal: o.signal, ctx: o.ctx });
    timings.dense_ms = performance.now() - t;

    const denseScore = new Map(dense.map((h) => [chunkId(h.docId, h.chunk), h.score]));
    let ranked: { docId: string; chunk: number; fused: number | null }[];
    const bm25 = new Map<string, number>();
    if (mode === 'hybrid') {
      t = performance.now();
      const lexical = docs.searchLexical(o.query, depth);
      timings.bm25_ms = performance.now() - t;
      t = performance.now();
      for (const h of lexical) bm25.set(chunkId(h.docId, h.chunk), h.score);
      const fused = reciprocalRankFusion([dense.map(idOf), lexical.map(idOf)]);
      ranked = fused.slice(0, o.k).map((f) => ({ ...parseChunkId(f.id), fused: f.score }));
      timings.fuse_ms = performance.now() - t;
    } else {
      ranked = dense.map((h) => ({ docId: h.docId, chunk: h.chunk, fused: null }));
    }

    // Chunks of a document deleted or replaced while the search ran are dropped.
    let hits: RetrievedChunk[] = [];
    for (const r of ranked) {
      const d = docs.get(r.docId);
      const c = d?.chunks[r.chunk];
      if (!d || !c) continue;
      // Chunks awaiting re-embedding live in another vector space: their cosine is the one their own search gave.
      const cosine = d.embedder === embedder ? dot(vector, c.embedding) : (denseScore.get(chunkId(r.docId, r.chunk)) ?? 0);
      const lexical = bm25.get(chunkId(r.docId, r.chunk)) ?? null;
      hits.push({
        docId: r.docId,
        title: d.title,
        chunk: r.chunk,
        text: c.text,
        score: r.fused ?? cosine,
        scores: { dense: cosine, bm25: mode === 'hybrid' ? lexical : null, fused: r.fused, rerank: null },
      });
    }

    let reranked = false;
    if (reranker && hits.length > 0) {
      t = performance.now();
      const logits = await this.#inference.rerank(reranker, o.query, hits.map((h) => h.text), { signal: o.signal }, o.ctx);
      hits = hits.map((h, i) => ({ ...h, score: logits[i]!, scores: { ...h.scores, rerank: logits[i]! } })).sort((a, b) => b.score - a.score);
      reranked = true;
      timings.rerank_ms = performance.now() - t;
    }
    return { mode, reranked, embedder, reranker: reranker ?? null, hits: hits.slice(0, o.keep ?? o.k), timings };
  }
}

function idOf(h: ChunkHit): string {
  return chunkId(h.docId, h.chunk);
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
