/**
 * RAG over HTTP: POST /v1/query (JSON), /v1/query/stream (SSE: `meta`,
 * `token`…, then `done` or `error`), and /v1/batch (1–50 queries run
 * concurrently through the engine; results in order, errors per item).
 */
import { Router, type Response } from 'express';
import { z } from 'zod';
import type { GenerationResult } from '../../engine/index.ts';
import type { RequestContext } from '../../services/inference.ts';
import { citationsOf } from '../../services/citations.ts';
import { RETRIEVAL_MODES, RetrievalUnavailableError } from '../../services/retrieval/retriever.ts';
import { type CacheStatus, type RagCached, type RagRequest, type RagRun, type RagService, type RagSource } from '../../services/rag.ts';
import { HttpError, toHttpError } from '../errors.ts';
import { requestIdOf } from '../middleware/request-id.ts';
import { clientGone, openSse } from '../sse.ts';
import { trimmedText, validate } from '../validate.ts';
import { contextOf } from '../middleware/request-context.ts';
import { usageJson } from '../route-helpers.ts';

/** Most queries one batch may hold. */
export const MAX_BATCH_QUERIES = 50;

export const QueryBody = z.object({
  query: trimmedText(3, 4000, 'must be at least 3 characters'),
  top_k_retrieve: z.number().int().min(1).max(50).default(20),
  top_k_rerank: z.number().int().min(1).max(20).default(4).describe('Chunks kept for the prompt (after the reranker, when one is loaded); they become one numbered source per document, so the answer may have fewer sources.'),
  max_tokens: z.number().int().min(1).max(4096).default(80),
  temperature: z.number().min(0).max(2).default(0.1),
  model: z.string().min(1).optional(),
  include_sources: z.boolean().default(false),
  /** false: neither look up nor store this query in the semantic cache. */
  cache: z.boolean().default(true),
  /** Keep generating past end-of-sequence tokens (vLLM's extension; benchmarks and load tests). */
  ignore_eos: z.boolean().default(false),
  /** Replaces the server's RAG system prompt (CANDELA_RAG_SYSTEM_PROMPT) for this query; part of the cache scope. */
  system_prompt: trimmedText(1, 20_000, 'must not be empty').optional(),
  /** Dense vectors only, or dense + BM25 fused by reciprocal rank (default: hybrid unless a reranker is loaded); part of the cache scope. */
  retrieval: z.enum(RETRIEVAL_MODES).optional(),
});
type QueryBody = z.infer<typeof QueryBody>;

/** Items are validated one by one (a bad one is an error in its place); more than {@link MAX_BATCH_QUERIES} is a 413. */
export const BatchBody = z.object({ queries: z.array(z.unknown()).min(1, 'give at least one query').meta({ maxItems: MAX_BATCH_QUERIES }) });

function toRequest(b: QueryBody): RagRequest {
  return {
    query: b.query,
    topKRetrieve: b.top_k_retrieve,
    topKRerank: Math.min(b.top_k_rerank, b.top_k_retrieve),
    maxTokens: b.max_tokens,
    temperature: b.temperature,
    model: b.model,
    cache: b.cache,
    ignoreEos: b.ignore_eos,
    systemPrompt: b.system_prompt,
    retrieval: b.retrieval,
  };
}

function sourcesOut(sources: RagSource[], includeText: boolean) {
  return sources.map((s) => ({ id: s.id, title: s.title, score: s.score, ...(s.chunks ? { chunks: s.chunks } : {}), ...(includeText ? { text: s.text } : {}) }));
}

/** What a response says about the cache: which kind of hit, how close, and which question it matched. */
function cacheOut(c: RagCached) {
  return { kind: c.cache, score: c.hit.score, matched_query: c.hit.query, created_at: new Date(c.hit.createdAt).toISOString() };
}

const NO_USAGE = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, prompt_tokens_details: { cached_tokens: 0 } };

/** Stage timings of an answer served from the cache: the lookup is all there was. */
function cachedTimings(c: RagCached, started: number) {
  return { retrieval_ms: 0, rerank_ms: 0, ttft_ms: c.lookupMs, generation_ms: 0, total_ms: performance.now() - started };
}

/** The X-Cache header: a query that skipped the cache is a miss to the client. */
function xCache(status: CacheStatus): string {
  return status === 'off' ? 'miss' : status;
}

/** The stream's `meta` event, for generated and replayed answers alike. */
function metaOut(requestId: string, a: { model: string; sources: RagSource[]; reranked: boolean }, includeText: boolean, cacheHit: boolean) {
  return { request_id: requestId, model: a.model, k: a.sources.length, reranked: a.reranked, sources: sourcesOut(a.sources, includeText), cache_hit: cacheHit };
}

/** Splits a cached answer into word-sized pieces for replay as `token` events (concatenation gives the text back). */
export function replayPieces(text: string): string[] {
  return text.match(/\s*\S+|\s+$/gu) ?? [];
}

function timingsOut(run: RagRun, r: GenerationResult, started: number) {
  return {
    retrieval_ms: run.retrievalMs,
    rerank_ms: run.rerankMs,
    ttft_ms: r.timings.ttftMs,
    generation_ms: r.timings.totalMs,
    total_ms: performance.now() - started,
  };
}

function unavailable(e: unknown): never {
  if (e instanceof RetrievalUnavailableError) throw new HttpError(503, 'rag_unavailable', e.message, { retryAfter: 5 });
  throw e;
}

export function createQueryRoutes(rag: RagService, options: { heartbeatMs: number }): Router {
  const r = Router();

  const answer = async (body: QueryBody, signal: AbortSignal, requestId: string, ctx: RequestContext) => {
    const started = performance.now();
    const run = await rag.start(toRequest(body), signal, ctx).catch(unavailable);
    if (run.kind === 'cached') {
      const a = run.hit.payload;
      return {
        cancelled: false,
        cache: run.cache,
        body: {
          answer: a.answer,
          sources: sourcesOut(a.sources, body.include_sources),
          citations: citationsOf(a.answer, a.sources),
          reranked: a.reranked,
          model: a.model,
          finish_reason: a.finishReason,
          // Nothing was generated for this request.
          usage: NO_USAGE,
          timings: cachedTimings(run, started),
          cache_hit: true,
          cache: cacheOut(run),
          request_id: requestId,
        },
      };
    }
    const result = await run.generation.collect();
    return {
      cancelled: result.finishReason === 'cancelled',
      cache: run.cache,
      body: {
        answer: result.text,
        sources: sourcesOut(run.sources, body.include_sources),
        citations: citationsOf(result.text, run.sources),
        reranked: run.reranked,
        model: run.model,
        finish_reason: result.finishReason,
        usage: usageJson(result),
        timings: timingsOut(run, result, started),
        cache_hit: false,
        request_id: requestId,
      },
    };
  };

  r.post('/v1/query', async (req, res: Response) => {
    const body = validate(QueryBody, req.body);
    const out = await answer(body, clientGone(res), requestIdOf(res), contextOf(res));
    if (out.cancelled) return;
    res.setHeader('X-Cache', xCache(out.cache));
    res.json(out.body);
  });

  r.post('/v1/query/stream', async (req, res: Response) => {
    const body = validate(QueryBody, req.body);
    const started = performance.now();
    const ac = new AbortController();
    const run = await rag.start(toRequest(body), ac.signal, contextOf(res)).catch(unavailable);
    res.setHeader('X-Cache', xCache(run.cache));
    const sse = openSse(req, res, options);
    sse.signal.addEventListener('abort', () => ac.abort(), { once: true });
    const requestId = requestIdOf(res);
    if (run.kind === 'cached') {
      // The same contract as a generated answer, replayed from the cache.
      const a = run.hit.payload;
      sse.send('meta', metaOut(requestId, a, body.include_sources, true));
      for (const text of replayPieces(a.answer)) {
        if (sse.signal.aborted) break;
        sse.send('token', { text });
      }
      if (!sse.signal.aborted) {
        sse.send('done', {
          request_id: requestId,
          model_id: a.model,
          k: a.sources.length,
          documents: a.sources.map((s) => s.id),
          citations: citationsOf(a.answer, a.sources),
          timings: cachedTimings(run, started),
          token_count: a.usage.completionTokens,
          tokens_per_sec: null,
          finish_reason: a.finishReason,
          cache_hit: true,
          cache: cacheOut(run),
        });
      }
      sse.close();
      return;
    }
    sse.send('meta', metaOut(requestId, run, body.include_sources, false));
    try {
      for await (const c of run.generation) if (!sse.send('token', { text: c.text })) await sse.drain();
      const result = await run.generation.result;
      if (result.finishReason !== 'cancelled') {
        sse.send('done', {
          request_id: requestId,
          model_id: run.model,
          k: run.sources.length,
          documents: run.sources.map((s) => s.id),
          citations: citationsOf(result.text, run.sources),
          timings: timingsOut(run, result, started),
          token_count: result.usage.completionTokens,
          tokens_per_sec: result.timings.tokensPerSec,
          finish_reason: result.finishReason,
          cache_hit: false,
        });
      }
    } catch (err) {
      const e = toHttpError(err);
      sse.send('error', { code: e.code, message: e.message, request_id: requestId });
    } finally {
      sse.close();
    }
  });

  r.post('/v1/batch', async (req, res: Response) => {
    const { queries } = validate(BatchBody, req.body);
    if (queries.length > MAX_BATCH_QUERIES) {
      throw new HttpError(413, 'too_many_items', `at most ${MAX_BATCH_QUERIES} queries per batch, got ${queries.length}`, { param: 'queries' });
    }
    const started = performance.now();
    const signal = clientGone(res);
    const requestId = requestIdOf(res);
    const ctx = contextOf(res);
    // All at once: the engine's scheduler batches the generations.
    const results = await Promise.all(
      queries.map(async (q, i) => {
        try {
          const body = validate(QueryBody, q);
          return (await answer(body, signal, `${requestId}-${i}`, ctx)).body;
        } catch (err) {
          const e = toHttpError(err);
          return { error: { ...e.toJSON().error, param: e.param ? `queries.${i}.${e.param}` : null }, status: e.status };
        }
      }),
    );
    if (signal.aborted) return;
    res.json({ object: 'list', data: results, total_ms: performance.now() - started, request_id: requestId });
  });
  return r;
}
