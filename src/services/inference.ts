/**
 * The one admission path for model work. Every generation, embedding,
 * rerank and tokenizer call the server makes passes here, and each gets the
 * same treatment:
 *
 *   token allowance (rate limits) → cost breaker (where the call is priced)
 *   → the model's bounded queue (OVERLOADED → 429 + Retry-After when full;
 *   a caller that leaves while waiting never reaches the engine) → engine
 *   → metrics (calls by outcome, queue and run time, tokens) → settle cost
 *   and charge tokens.
 *
 * Generations queue in the engine's own scheduler (continuous batching): here
 * they only take one of `maxBatch + maxQueue` slots, the bound the scheduler
 * enforces too. Encoder calls (embed, rerank) wait here, `encoderConcurrency`
 * at a time per model, because once handed to the engine they cannot be
 * taken back. Tokenizer calls are synchronous and microseconds long: they
 * are counted but take no slot.
 *
 * No express types here; the routes pass an AbortSignal for "client left".
 */
import type { Engine, GenerateInput, GenerateOptions, Generation, GenerationResult } from '../engine/index.ts';
import { AdmissionQueue } from './admission.ts';
import type { CostBreaker, CostTicket } from './cost/cost-breaker.ts';
import type { ModelService } from './model-service.ts';
import type { Identity, RateLimits } from './rate-limits.ts';

/** Tenant of requests made without an API key (auth off). */
export const DEFAULT_TENANT = 'default';

/** Who asked: the tenant (cache scope) and what rate limits count against. */
export interface RequestContext {
  tenant: string;
  identity: Identity;
}

/** Kinds of model work, as labelled in metrics. */
export type InferenceOp = 'generate' | 'embed' | 'rerank' | 'tokenize';

/** How a call ended: `overloaded` (refused by a full queue), `cancelled` (its caller left). */
export type InferenceOutcome = 'ok' | 'error' | 'cancelled' | 'overloaded';

/** What the service reports to metrics. */
export interface InferenceObserver {
  /** One call ended; `queueS` waiting for a slot, `runS` in the engine (0 when it never ran). */
  call(model: string, op: InferenceOp, outcome: InferenceOutcome, queueS: number, runS: number): void;
  /** A model's slots changed. */
  queue(model: string, running: number, waiting: number): void;
  /** Input tokens an embedding call processed. */
  inputTokens(model: string, tokens: number): void;
}

/** The part of the engine that runs models (all that this service needs of it). */
export type ModelRunner = Pick<Engine, 'generate' | 'embed' | 'rerank' | 'tokenize' | 'detokenize' | 'countEmbeddingTokens'>;

/** Options of {@link InferenceService}. */
export interface InferenceServiceOptions {
  engine: ModelRunner;
  /** The model registry: queue limits come from each model's spec. */
  models: ModelService;
  /** Called with every finished generation (metrics). */
  onGeneration?: (model: string, result: GenerationResult) => void;
  observer?: InferenceObserver;
  /** Reserves and settles the cost of every priced call. */
  breaker?: CostBreaker;
  /** Checks the caller's token allowance and charges generated tokens to it. */
  limits?: RateLimits;
  /** Wall-clock limit of every generation, ms (0 or absent: none), unless the call sets its own. */
  generationTimeoutMs?: number;
  /** LLM batch size and waiting line of models whose spec sets none (the engine's defaults: 16, 256). */
  maxBatch?: number;
  maxQueue?: number;
  /** Encoder calls per model handed to the engine at once (default 2: one running, one ready behind it; at most the model's `maxQueue`). */
  encoderConcurrency?: number;
}

/** Options of an encoder call. */
export interface EncodeOptions {
  truncate?: boolean;
  /** Aborting (the client left) drops the call if it has not reached the engine yet. */
  signal?: AbortSignal | undefined;
}

/** The engine's default completion budget, when a request gives none. */
const ENGINE_DEFAULT_MAX_TOKENS = 256;

/** Tokens of text before tokenizing: about 3 bytes per token is on the high side for the languages served. */
function estimateTokens(text: string): number {
  return Math.ceil(Buffer.byteLength(text) / 3);
}

/** Prompt tokens before tokenizing. */
function estimatePromptTokens(input: GenerateInput): number {
  if (input.tokens) return input.tokens.length;
  const text = input.prompt ?? input.messages.map((m) => m.content).join('\n');
  return estimateTokens(text) + (input.messages?.length ?? 0) * 4;
}

function outcomeOf(err: unknown, signal: AbortSignal | undefined): InferenceOutcome {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'OVERLOADED') return 'overloaded';
  if (code === 'CANCELLED' || signal?.aborted) return 'cancelled';
  return 'error';
}

/** Runs model work through admission; see the module comment. */
export class InferenceService {
  readonly #engine: ModelRunner;
  readonly #models: ModelService;
  readonly #onGeneration: InferenceServiceOptions['onGeneration'];
  readonly #observer: InferenceObserver | undefined;
  readonly breaker: CostBreaker | undefined;
  readonly #limits: RateLimits | undefined;
  readonly #timeLimitMs: number;
  readonly #maxBatch: number;
  readonly #maxQueue: number;
  readonly #encoderConcurrency: number;
  readonly #queues = new Map<string, AdmissionQueue>();

  constructor(options: InferenceServiceOptions) {
    this.#engine = options.engine;
    this.#models = options.models;
    this.#onGeneration = options.onGeneration;
    this.#observer = options.observer;
    this.breaker = options.breaker;
    this.#limits = options.limits;
    this.#timeLimitMs = options.generationTimeoutMs ?? 0;
    this.#maxBatch = options.maxBatch ?? 16;
    this.#maxQueue = options.maxQueue ?? 256;
    this.#encoderConcurrency = options.encoderConcurrency ?? 2;
  }

  /**
   * The model's queue: generations and encoder calls never share one, even
   * under one name. A name the engine does not know is refused here
   * (`MODEL_NOT_FOUND`), before it can add a queue or a metrics series.
   */
  #queue(model: string, kind: 'llm' | 'encoder'): AdmissionQueue {
    const key = `${kind}\0${model}`;
    let q = this.#queues.get(key);
    if (!q) {
      this.#models.modelInfo(model);
      const spec = this.#models.specs.find((s) => s.name === model);
      const maxQueue = spec?.maxQueue ?? this.#maxQueue;
      q =
        kind === 'llm'
          ? new AdmissionQueue(model, { concurrency: (spec?.maxBatch ?? this.#maxBatch) + maxQueue, maxQueue: 0 })
          : // The engine's own line for the model holds `maxQueue` jobs: never hand it more than fit.
            new AdmissionQueue(model, { concurrency: Math.min(this.#encoderConcurrency, maxQueue), maxQueue });
      this.#queues.set(key, q);
    }
    return q;
  }

  /** Waits for a slot of `model`; reports refusals and the queue's new size. */
  async #admit(model: string, op: InferenceOp, q: AdmissionQueue, signal: AbortSignal | undefined): Promise<{ release: () => void; queueS: number }> {
    const t0 = performance.now();
    const waiting = q.acquire(signal);
    this.#observer?.queue(model, q.running, q.waiting);
    try {
      const release = await waiting;
      return {
        release: () => {
          release();
          this.#observer?.queue(model, q.running, q.waiting);
        },
        queueS: (performance.now() - t0) / 1000,
      };
    } catch (err) {
      this.#observer?.call(model, op, outcomeOf(err, signal), (performance.now() - t0) / 1000, 0);
      this.#observer?.queue(model, q.running, q.waiting);
      throw err;
    }
  }

  /**
   * Starts a generation: refuses it when the caller's token allowance is
   * used up or the cost budget is spent, reserves its worst-case cost, takes
   * a slot of the model, and once it has finished (however it finished)
   * settles the cost, charges the tokens and reports it to the observers.
   */
  async generate(model: string, input: GenerateInput, options: GenerateOptions, ctx?: RequestContext): Promise<Generation> {
    const queue = this.#queue(model, 'llm');
    if (ctx) await this.#limits?.checkTokens(ctx.identity);
    const ticket = await this.breaker?.reserve(model, estimatePromptTokens(input), options.params?.maxTokens ?? ENGINE_DEFAULT_MAX_TOKENS);
    let slot: { release: () => void; queueS: number };
    try {
      slot = await this.#admit(model, 'generate', queue, options.signal);
    } catch (err) {
      await ticket?.settle({ promptTokens: 0, completionTokens: 0, engineMs: 0 });
      throw err;
    }
    let gen: Generation;
    try {
      gen = this.#engine.generate(model, input, { timeLimitMs: this.#timeLimitMs, ...options });
    } catch (err) {
      slot.release();
      this.#observer?.call(model, 'generate', outcomeOf(err, options.signal), slot.queueS, 0);
      await ticket?.settle({ promptTokens: 0, completionTokens: 0, engineMs: 0 });
      throw err;
    }
    void gen.result.then(async (r) => {
      slot.release();
      this.#onGeneration?.(model, r);
      this.#observer?.call(model, 'generate', r.finishReason === 'cancelled' ? 'cancelled' : 'ok', slot.queueS, r.timings.totalMs / 1000);
      await ticket?.settle({ promptTokens: r.usage.promptTokens, completionTokens: r.usage.completionTokens, engineMs: r.timings.totalMs });
      if (ctx) await this.#limits?.addTokens(ctx.identity, r.usage.completionTokens).catch(() => undefined);
    });
    return gen;
  }

  /**
   * Runs one encoder call through admission: allowance, cost (only for a
   * model with a price of its own), the model's queue, metrics.
   */
  async #encode<T>(model: string, op: 'embed' | 'rerank', inputTokens: () => number, signal: AbortSignal | undefined, ctx: RequestContext | undefined, run: () => Promise<T>): Promise<T> {
    const queue = this.#queue(model, 'encoder');
    if (ctx) await this.#limits?.checkTokens(ctx.identity);
    const priced = this.breaker?.charges(model) ?? false;
    const tokens = priced ? inputTokens() : 0;
    const ticket: CostTicket | undefined = priced ? await this.breaker?.reserve(model, tokens, 0) : undefined;
    let slot: { release: () => void; queueS: number };
    try {
      slot = await this.#admit(model, op, queue, signal);
    } catch (err) {
      await ticket?.settle({ promptTokens: 0, completionTokens: 0, engineMs: 0 });
      throw err;
    }
    const t0 = performance.now();
    try {
      const out = await run();
      const runMs = performance.now() - t0;
      this.#observer?.call(model, op, signal?.aborted ? 'cancelled' : 'ok', slot.queueS, runMs / 1000);
      await ticket?.settle({ promptTokens: tokens, completionTokens: 0, engineMs: runMs });
      return out;
    } catch (err) {
      this.#observer?.call(model, op, outcomeOf(err, signal), slot.queueS, (performance.now() - t0) / 1000);
      await ticket?.settle({ promptTokens: 0, completionTokens: 0, engineMs: performance.now() - t0 });
      throw err;
    } finally {
      slot.release();
    }
  }

  /**
   * L2-normalised embeddings, through admission. Input tokens are counted
   * (on the JS thread: ~0.5 ms per long text) only where they are needed, for
   * a priced model; {@link InferenceService.embedWithUsage} always counts.
   */
  async embed(model: string, texts: string[], options: EncodeOptions = {}, ctx?: RequestContext): Promise<Float32Array[]> {
    let counted: number | undefined;
    const count = (): number => (counted ??= this.countEmbeddingTokens(model, texts).reduce((a, b) => a + b, 0));
    const vectors = await this.#encode(model, 'embed', count, options.signal, ctx, () => this.#engine.embed(model, texts, { truncate: options.truncate ?? true }));
    if (counted !== undefined) this.#observer?.inputTokens(model, counted);
    return vectors;
  }

  /** {@link InferenceService.embed} with the input's token count (OpenAI's `usage`), counted once and reported to metrics. */
  async embedWithUsage(model: string, texts: string[], options: EncodeOptions = {}, ctx?: RequestContext): Promise<{ vectors: Float32Array[]; promptTokens: number }> {
    const promptTokens = this.countEmbeddingTokens(model, texts).reduce((a, b) => a + b, 0);
    const vectors = await this.#encode(model, 'embed', () => promptTokens, options.signal, ctx, () => this.#engine.embed(model, texts, { truncate: options.truncate ?? true }));
    this.#observer?.inputTokens(model, promptTokens);
    return { vectors, promptTokens };
  }

  /** Raw cross-encoder logits, one per document in document order, through admission. */
  rerank(model: string, query: string, documents: string[], options: EncodeOptions = {}, ctx?: RequestContext): Promise<number[]> {
    // The cross-encoder has no token counter across the boundary: the price estimate goes by bytes.
    const estimate = (): number => documents.reduce((n, d) => n + estimateTokens(query) + estimateTokens(d), 0);
    return this.#encode(model, 'rerank', estimate, options.signal, ctx, () => this.#engine.rerank(model, query, documents, { truncate: options.truncate ?? true }));
  }

  /** Token counts of texts for an embedder (before truncation). */
  countEmbeddingTokens(model: string, texts: string[]): number[] {
    return this.#engine.countEmbeddingTokens(model, texts);
  }

  /** An LLM's token ids for `text` (synchronous, no slot; counted). */
  tokenize(model: string, text: string, addBos = false): number[] {
    return this.#sync(model, () => this.#engine.tokenize(model, text, addBos));
  }

  /** Text of an LLM's token ids (synchronous, no slot; counted). */
  detokenize(model: string, ids: number[], skipSpecial = false): string {
    return this.#sync(model, () => this.#engine.detokenize(model, ids, skipSpecial));
  }

  #sync<T>(model: string, run: () => T): T {
    const t0 = performance.now();
    try {
      const out = run();
      this.#observer?.call(model, 'tokenize', 'ok', 0, (performance.now() - t0) / 1000);
      return out;
    } catch (err) {
      // An unknown name is the caller's mistake, not a series of its own.
      if ((err as { code?: unknown }).code !== 'MODEL_NOT_FOUND') this.#observer?.call(model, 'tokenize', 'error', 0, (performance.now() - t0) / 1000);
      throw err;
    }
  }
}
