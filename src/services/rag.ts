/**
 * The RAG pipeline: embed the query, retrieve the nearest chunks, rerank
 * them with the cross-encoder when one is loaded, and generate an answer
 * from a prompt that cites the chunks as numbered sources.
 * No express types here; the routes stream or collect the generation.
 */
import type { Generation } from '../engine/index.ts';
import type { DocumentService } from './documents.ts';
import type { ModelService } from './model-service.ts';

/** A validated RAG request. */
export interface RagRequest {
  query: string;
  topKRetrieve: number;
  topKRerank: number;
  maxTokens: number;
  temperature: number;
  model?: string | undefined;
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
}

/** Raised when a RAG query cannot run (no documents service, no LLM). */
export class RagUnavailableError extends Error {
  override name = 'RagUnavailableError';
}

const SYSTEM =
  'You answer questions using only the numbered sources provided. Cite sources in square brackets, like [1]. ' +
  'If the sources do not contain the answer, say that you do not know.';

/** Builds the user turn: numbered sources, then the question. */
export function ragPrompt(query: string, sources: RagSource[]): string {
  const blocks = sources.map((s, i) => `[${i + 1}] ${s.title}\n${s.text}`).join('\n\n');
  return `Sources:\n\n${blocks || '(no sources found)'}\n\nQuestion: ${query}`;
}

export class RagService {
  readonly #models: ModelService;
  readonly #documents: () => DocumentService | undefined;
  readonly #onStages: ((retrievalMs: number, rerankMs: number | undefined) => void) | undefined;

  constructor(options: {
    models: ModelService;
    documents: () => DocumentService | undefined;
    /** Stage timings of every query (metrics); rerank undefined when no reranker ran. */
    onStages?: (retrievalMs: number, rerankMs: number | undefined) => void;
  }) {
    this.#models = options.models;
    this.#documents = options.documents;
    this.#onStages = options.onStages;
  }

  /** Retrieves, reranks and starts the generation; `signal` cancels it. */
  async start(req: RagRequest, signal: AbortSignal): Promise<RagRun> {
    const docs = this.#documents();
    if (!docs) throw new RagUnavailableError('retrieval needs an embedding model, and none is ready');
    const model = req.model ?? this.#models.defaultModel('llm');
    if (!model) throw new RagUnavailableError('no LLM is configured on this server');
    const engine = this.#models.engine;
    const embedder = this.#models.defaultModel('embedder')!;

    let t = performance.now();
    const [q] = await engine.embed(embedder, [req.query], { truncate: true });
    const hits = docs.search(q!, req.topKRetrieve);
    const retrievalMs = performance.now() - t;

    let sources: RagSource[] = hits.map((h) => ({ id: h.docId, title: h.title, score: h.score, text: h.text }));
    let reranked = false;
    t = performance.now();
    const reranker = this.#models.defaultModel('reranker');
    if (reranker && sources.length > 0 && engine.listModels().some((m) => m.name === reranker && m.status === 'ready')) {
      const scores = await engine.rerank(reranker, req.query, sources.map((s) => s.text));
      sources = sources.map((s, i) => ({ ...s, score: scores[i]! })).sort((a, b) => b.score - a.score);
      reranked = true;
    }
    const rerankMs = performance.now() - t;
    sources = sources.slice(0, req.topKRerank);
    this.#onStages?.(retrievalMs, reranked ? rerankMs : undefined);

    const generation = this.#models.generate(
      model,
      { messages: [{ role: 'system', content: SYSTEM }, { role: 'user', content: ragPrompt(req.query, sources) }] },
      { params: { maxTokens: req.maxTokens, temperature: req.temperature }, signal },
    );
    return { model, sources, reranked, retrievalMs, rerankMs, generation };
  }
}
