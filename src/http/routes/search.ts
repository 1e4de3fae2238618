/**
 * POST /v1/search: retrieval without generation, for a caller with its own
 * LLM or an evaluation script. `{query, top_k, retrieval, rerank}` →
 * the ranked chunks with every score (dense cosine, BM25, fused RRF,
 * rerank logit) and per-stage timings. The same {@link Retriever} as the
 * RAG routes, so what /v1/search returns is what /v1/query would cite.
 */
import { Router } from 'express';
import { z } from 'zod';
import { RerankNotReadyError, RerankUnavailableError, RETRIEVAL_MODES, RetrievalUnavailableError, type Retriever } from '../../services/retrieval/retriever.ts';
import { HttpError } from '../errors.ts';
import { requestIdOf } from '../middleware/request-id.ts';
import { contextOf } from '../middleware/request-context.ts';
import { clientGone } from '../sse.ts';
import { validate } from '../validate.ts';

/** Most chunks one search returns. */
export const MAX_SEARCH_TOP_K = 100;
/** Candidates a reranked search scores at least (the RAG routes' default top_k_retrieve). */
export const MIN_RERANK_CANDIDATES = 20;

export const SearchBody = z.object({
  query: z.string().trim().min(1, 'must not be empty').max(4000),
  top_k: z.number().int().min(1).max(MAX_SEARCH_TOP_K).default(5),
  /** Dense vectors only, or dense + BM25 fused by reciprocal rank (default: hybrid unless a reranker is loaded). */
  retrieval: z.enum(RETRIEVAL_MODES).optional(),
  /** Rerank max(top_k, 20) candidates with the loaded cross-encoder; 400 when none is loaded. */
  rerank: z.boolean().default(false),
});

export function createSearchRoutes(retriever: Retriever): Router {
  const r = Router();
  r.post('/v1/search', async (req, res) => {
    const body = validate(SearchBody, req.body);
    const started = performance.now();
    const k = body.rerank ? Math.max(body.top_k, MIN_RERANK_CANDIDATES) : body.top_k;
    const signal = clientGone(res);
    const found = await retriever.retrieve({ query: body.query, k, keep: body.top_k, mode: body.retrieval, rerank: body.rerank, signal, ctx: contextOf(res) }).catch((e: unknown) => {
      if (e instanceof RerankUnavailableError) throw new HttpError(400, 'rerank_unavailable', e.message, { param: 'rerank' });
      if (e instanceof RerankNotReadyError) throw new HttpError(503, 'model_not_ready', e.message, { retryAfter: 5 });
      if (e instanceof RetrievalUnavailableError) throw new HttpError(503, 'retrieval_unavailable', e.message, { retryAfter: 5 });
      throw e;
    });
    if (signal.aborted) return; // the client is gone
    res.json({
      object: 'list',
      data: found.hits.map((h, i) => ({
        rank: i + 1,
        document_id: h.docId,
        title: h.title,
        chunk_index: h.chunk,
        text: h.text,
        score: h.score,
        scores: h.scores,
      })),
      retrieval: found.mode,
      reranked: found.reranked,
      models: { embedder: found.embedder, reranker: found.reranker },
      timings: { ...found.timings, total_ms: performance.now() - started },
      request_id: requestIdOf(res),
    });
  });
  return r;
}
