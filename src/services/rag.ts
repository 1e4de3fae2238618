/**
 * The RAG pipeline: embed the query, retrieve the nearest chunks, rerank
 * them with the cross-encoder when one is loaded, and generate an answer
 * from a prompt that cites the chunks as numbered sources.
 * No express types here; the routes stream or collect the generation.
 */
import type { Generation, GenerationResult } from '../engine/index.ts';
import type { CacheScope } from './cache/scope.ts';
import type { CacheHit, SemanticCache } from './cache/semantic-cache.ts';
import type { DocumentService } from './documents.ts';
import { DEFAULT_TENANT, type ModelService, type RequestContext } from './model-service.ts';
import { DEFAULT_RAG_LAYOUT, DEFAULT_RAG_SYSTEM_PROMPT, ragMessages, type RagLayout } from './rag-prompt.ts';

/** A validated RAG request. */
export interface RagRequest {
  query: string;
  topKRetrieve: number;
  topKRerank: number;
  maxTokens: number;
  temperature: number;
  model?: string | undefined;
  /** Look the question up in the semantic cache and store the answer (default true). */
  cache?: boolean;
  /** Generate past end-of-sequence tokens (benchmarks and load tests: fixed answer lengths). */
  ignoreEos?: boolean;
  /** Replaces the server's system prompt for this query (part of the cache scope). */
  systemPrompt?: string | undefined;
}

/** A RAG answer as the cache keeps it. */
export interface CachedRagAnswer {
  answer: string;
  model: string;
  sources: RagSource[];
  reranked: boolean;
  finishReason: string;
  usage: { promptTokens: number; completionTokens: number; totalTokens: number };
}

/** How the cache took part: a hit, a miss, or not asked (disabled, or the request opted out). */
export type CacheStatus = 'exact' | 'semantic' | 'miss' | 'off';

/** A query answered from the cache. */
export interface RagCached {
  kind: 'cached';
  cache: 'exact' | 'semantic';
  hit: CacheHit<CachedRagAnswer>;
  lookupMs: number;
}

/** One source given to the model. */
export interface RagSource {
  id: string;
  title: string;
  /** Cross-encoder logit when reranked, cosine similarity otherwise. */
  score: number;
  text: string;
}

/** Retrieval done, generation started. */
export interface RagRun {
  model: string;
  sources: RagSource[];
  reranked: boolean;
  retrievalMs: number;
  rerankMs: number;
  generation: Generation;
  kind: 'run';
  cache: 'miss' | 'off';
}

/** Raised when a RAG query cannot run (no documents service, no LLM). */
export class RagUnavailableError extends Error {
  override name = 'RagUnavailableError';
}

/** The prompt a {@link RagService} builds: the default system prompt and the user turn's layout. */
export interface RagPromptSettings {
  /** System prompt of queries that bring none (default {@link DEFAULT_RAG_SYSTEM_PROMPT}). */
  system?: string;
  /** Layout of the user turn (default {@link DEFAULT_RAG_LAYOUT}). */
  layout?: RagLayout;
}

export class RagService {
  readonly #models: ModelService;
  readonly #documents: () => DocumentService | undefined;
  readonly #onStages: ((retrievalMs: number, rerankMs: number | undefined) => void) | undefined;
  readonly #cache: SemanticCache | undefined;
  readonly #system: string;
  readonly #layout: RagLayout;

  constructor(options: {
    models: ModelService;
    documents: () => DocumentService | undefined;
    /** Stage timings of every query (metrics); rerank undefined when no reranker ran. */
    onStages?: (retrievalMs: number, rerankMs: number | undefined) => void;
    cache?: SemanticCache | undefined;
    prompt?: RagPromptSettings | undefined;
  }) {
    this.#models = options.models;
    this.#documents = options.documents;
    this.#onStages = options.onStages;
    this.#cache = options.cache;
    this.#system = options.prompt?.system ?? DEFAULT_RAG_SYSTEM_PROMPT;
    this.#layout = options.prompt?.layout ?? DEFAULT_RAG_LAYOUT;
  }

  /**
   * Answers from the cache, or retrieves, reranks and starts the generation
   * (`signal` cancels it). A completed answer is stored in the cache.
   */
  async start(req: RagRequest, signal: AbortSignal, ctx: RequestContext = { tenant: DEFAULT_TENANT, identity: { ip: '' } }): Promise<RagCached | RagRun> {
    const docs = this.#documents();
    if (!docs) throw new RagUnavailableError('retrieval needs an embedding model, and none is ready');
    const model = req.model ?? this.#models.defaultModel('llm');
    if (!model) throw new RagUnavailableError('no LLM is configured on this server');
    const engine = this.#models.engine;
    // Retrieval uses the documents' embedder (BGE by default); the cache compares questions with its own (MiniLM).
    const embedder = docs.embedder;
    const cacheEmbedder = this.#models.embedderFor('cache')?.name ?? embedder;
    const rerankerName = this.#models.defaultModel('reranker');
    const reranker = rerankerName && engine.listModels().some((m) => m.name === rerankerName && m.status === 'ready') ? rerankerName : undefined;

    const cache = req.cache === false ? undefined : this.#cache;
    const system = req.systemPrompt ?? this.#system;
    const layout = this.#layout;
    // Everything besides the question that shapes the answer.
    const scope: CacheScope = {
      kind: 'rag',
      model,
      params: {
        max_tokens: req.maxTokens,
        temperature: req.temperature,
        ...(req.ignoreEos ? { ignore_eos: true } : {}),
        // A server evaluating another layout never shares answers with one running the default.
        ...(layout === DEFAULT_RAG_LAYOUT ? {} : { layout }),
      },
      system,
      retrieval: { embedder, cache_embedder: cacheEmbedder, reranker: reranker ?? null, top_k_retrieve: req.topKRetrieve, top_k_rerank: req.topKRerank },
      corpus: docs.version,
      tenant: ctx.tenant,
    };
    const lookupStart = performance.now();
    if (cache) {
      // A client whose budget is spent may still be served from the cache, if so configured.
      this.#models.breaker?.assertServesCache();
      const hit = await cache.exact<CachedRagAnswer>(scope, req.query);
      if (hit) return { kind: 'cached', cache: 'exact', hit, lookupMs: performance.now() - lookupStart };
    }

    let t = performance.now();
    let q: Float32Array | undefined;
    if (cache) {
      [q] = await engine.embed(cacheEmbedder, [req.query], { truncate: true });
      const hit = await cache.semantic<CachedRagAnswer>(scope, req.query, q!);
      if (hit) return { kind: 'cached', cache: 'semantic', hit, lookupMs: performance.now() - lookupStart };
    }
    const hits = await docs.searchText(req.query, req.topKRetrieve, q && { model: cacheEmbedder, embedding: q });
    const retrievalMs = performance.now() - t;

    let sources: RagSource[] = hits.map((h) => ({ id: h.docId, title: h.title, score: h.score, text: h.text }));
    let reranked = false;
    t = performance.now();
    if (reranker && sources.length > 0) {
      const scores = await engine.rerank(reranker, req.query, sources.map((s) => s.text));
      sources = sources.map((s, i) => ({ ...s, score: scores[i]! })).sort((a, b) => b.score - a.score);
      reranked = true;
    }
    const rerankMs = performance.now() - t;
    sources = sources.slice(0, req.topKRerank);
    this.#onStages?.(retrievalMs, reranked ? rerankMs : undefined);

    const generation = await this.#models.generate(
      model,
      { messages: ragMessages(system, req.query, sources, layout) },
      { params: { maxTokens: req.maxTokens, temperature: req.temperature, ignoreEos: req.ignoreEos ?? false, ...(layout.stop.length ? { stop: layout.stop } : {}) }, signal },
      ctx,
    );
    if (cache) {
      // Only completed answers are kept: not cancelled, not failed, not empty.
      void generation.result.then((r: GenerationResult) => {
        if ((r.finishReason === 'stop' || r.finishReason === 'length') && r.text.trim() !== '') {
          const payload: CachedRagAnswer = { answer: r.text, model, sources, reranked, finishReason: r.finishReason, usage: r.usage };
          return cache.put(scope, req.query, q!, payload);
        }
      });
    }
    return { kind: 'run', cache: cache ? 'miss' : 'off', model, sources, reranked, retrievalMs, rerankMs, generation };
  }
}
