/**
 * The RAG pipeline: embed the query, retrieve chunks (dense or hybrid, see
 * retrieval/retriever.ts), rerank them with the cross-encoder when one is
 * loaded, and generate an answer from a prompt that cites the chunks as
 * numbered sources.
 * No express types here; the routes stream or collect the generation.
 */
import type { Generation, GenerationResult } from '../engine/index.ts';
import type { CacheScope } from './cache/scope.ts';
import type { CacheHit, SemanticCache } from './cache/semantic-cache.ts';
import type { DocumentService } from './documents.ts';
import { DEFAULT_TENANT, type InferenceService, type RequestContext } from './inference.ts';
import type { ModelService } from './model-service.ts';
import { DEFAULT_RAG_LAYOUT, DEFAULT_RAG_SYSTEM_PROMPT, ragMessages, type RagLayout } from './rag-prompt.ts';
import { RetrievalUnavailableError, Retriever, type RetrievalMode, type RetrievedChunk } from './retrieval/retriever.ts';
import { groupByDocument } from './source-groups.ts';

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
  /** Dense or hybrid retrieval (default: the retriever's, hybrid unless a reranker is loaded); part of the cache scope. */
  retrieval?: RetrievalMode | undefined;
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
  /** Cross-encoder logit when reranked, else the fused (RRF) score in hybrid mode, else cosine similarity (the best of its chunks). */
  score: number;
  text: string;
  /** Positions in the document of the chunks this source holds (absent in answers cached before sources carried them). */
  chunks?: number[];
}

/** Retrieval done, generation started. */
export interface RagRun {
  model: string;
  sources: RagSource[];
  reranked: boolean;
  /** The retrieval mode that ran. */
  mode: RetrievalMode;
  retrievalMs: number;
  rerankMs: number;
  generation: Generation;
  kind: 'run';
  cache: 'miss' | 'off';
}

/** Raised when a RAG query cannot run (no documents service, no LLM). */
export class RagUnavailableError extends RetrievalUnavailableError {
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
  readonly #inference: InferenceService;
  readonly #documents: () => DocumentService | undefined;
  readonly #retriever: Retriever;
  readonly #onStages: ((retrievalMs: number, rerankMs: number | undefined) => void) | undefined;
  readonly #cache: SemanticCache | undefined;
  readonly #system: string;
  readonly #layout: RagLayout;

  constructor(options: {
    models: ModelService;
    /** The admission path the query's embed, rerank and generation go through. */
    inference: InferenceService;
    documents: () => DocumentService | undefined;
    /** The retrieval the RAG routes and POST /v1/search share (default: one over `models`, `inference` and `documents`). */
    retriever?: Retriever;
    /** Stage timings of every query (metrics); rerank undefined when no reranker ran. */
    onStages?: (retrievalMs: number, rerankMs: number | undefined) => void;
    cache?: SemanticCache | undefined;
    prompt?: RagPromptSettings | undefined;
  }) {
    this.#models = options.models;
    this.#inference = options.inference;
    this.#documents = options.documents;
    this.#retriever = options.retriever ?? new Retriever({ models: options.models, inference: options.inference, documents: options.documents });
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
    const retriever = this.#retriever;
    // Retrieval uses the documents' embedder (BGE by default); the cache compares questions with its own (MiniLM).
    const embedder = retriever.embedder()!;
    const cacheEmbedder = this.#models.embedderFor('cache')?.name ?? embedder;
    const reranker = retriever.reranker();
    const mode = req.retrieval ?? retriever.defaultMode();

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
      retrieval: { embedder, cache_embedder: cacheEmbedder, reranker: reranker ?? null, top_k_retrieve: req.topKRetrieve, top_k_rerank: req.topKRerank, mode },
      corpus: docs.version,
      tenant: ctx.tenant,
    };
    const lookupStart = performance.now();
    if (cache) {
      // A client whose budget is spent may still be served from the cache, if so configured.
      this.#inference.breaker?.assertServesCache();
      const hit = await cache.exact<CachedRagAnswer>(scope, req.query);
      if (hit) return { kind: 'cached', cache: 'exact', hit, lookupMs: performance.now() - lookupStart };
    }

    const t = performance.now();
    // The cache's vector (its own embedder, no instruction) is retrieval's too when that is the same model and needs no instruction.
    let q: Float32Array | undefined;
    if (cache) {
      [q] = await this.#inference.embed(cacheEmbedder, [req.query], { truncate: true, signal }, ctx);
      const hit = await cache.semantic<CachedRagAnswer>(scope, req.query, q!);
      if (hit) return { kind: 'cached', cache: 'semantic', hit, lookupMs: performance.now() - lookupStart };
    }
    const vector = q && cacheEmbedder === embedder && !retriever.queryInstruction() ? q : undefined;
    const embedMs = performance.now() - t;
    const found = await retriever.retrieve({ query: req.query, vector, k: req.topKRetrieve, keep: req.topKRerank, mode, rerank: reranker !== undefined, signal, ctx });
    const { timings, reranked } = found;
    const retrievalMs = embedMs + timings.embed_ms + timings.dense_ms + timings.bm25_ms + timings.fuse_ms;
    const rerankMs = timings.rerank_ms;
    const sources = promptSources(found.hits, layout);
    this.#onStages?.(retrievalMs, reranked ? rerankMs : undefined);

    const generation = await this.#inference.generate(
      model,
      { messages: ragMessages(system, req.query, sources, layout) },
      { params: { maxTokens: req.maxTokens, temperature: req.temperature, ignoreEos: req.ignoreEos ?? false, ...(layout.stop.length ? { stop: layout.stop } : {}) }, signal },
      ctx,
    );
    if (cache && q) {
      const cacheVector = q;
      // Only completed answers are kept: not cancelled, not failed, not empty.
      void generation.result.then((r: GenerationResult) => {
        if ((r.finishReason === 'stop' || r.finishReason === 'length') && r.text.trim() !== '') {
          const payload: CachedRagAnswer = { answer: r.text, model, sources, reranked, finishReason: r.finishReason, usage: r.usage };
          return cache.put(scope, req.query, cacheVector, payload);
        }
      });
    }
    return { kind: 'run', cache: cache ? 'miss' : 'off', model, sources, reranked, mode, retrievalMs, rerankMs, generation };
  }
}

/** The numbered sources of the prompt, from the retrieved chunks (best first), as the layout says. */
export function promptSources(hits: readonly RetrievedChunk[], layout: RagLayout): RagSource[] {
  const sources: RagSource[] = layout.groupByDocument
    ? groupByDocument(hits)
    : hits.map((h) => ({ id: h.docId, title: h.title, score: h.score, text: h.text, chunks: [h.chunk] }));
  return layout.bestLast ? sources.reverse() : sources;
}
