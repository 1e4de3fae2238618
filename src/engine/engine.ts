/**
 * The typed engine API: models, generation, embeddings, reranking,
 * tokenization. Wraps the native addon; every native error becomes an
 * {@link EngineError} with a stable code.
 */
import type * as Native from '../../native/node/binding.d.ts';
import { binding } from './binding.ts';
import { native, nativeAsync } from './errors.ts';
import { Generation } from './generation.ts';

export type ModelInfo = Native.ModelInfo;
export type ChatMessage = Native.ChatMessage;
export type SamplingParams = Native.SamplingParams;
export type SchedulerStats = Native.SchedulerStats;
export type MemoryInfo = Native.MemoryInfo;
export type KernelInfo = Native.KernelInfo;
export type ModelRole = 'llm' | 'embedder' | 'reranker';

/** How to load a model. */
export interface LoadOptions {
  name: string;
  role: ModelRole;
  /** A `.gguf` file or a model directory. */
  path: string;
  /** "auto" (CUDA when built in and present), "cpu", "cuda", "cuda:N". */
  device?: string;
  /** LLM: sequences decoded together. */
  maxBatch?: number;
  /** Requests allowed to wait before OVERLOADED. */
  maxQueue?: number;
  /** LLM: prompt tokens processed per scheduler step. */
  prefillChunk?: number;
  /** LLM: MiB of finished sequences' K/V kept for prompt reuse (0: off). */
  prefixCacheMb?: number;
  /** Embedder: override the model's pooling. */
  pooling?: 'cls' | 'mean';
}

/** What to generate from: exactly one of prompt, messages or tokens. */
export type GenerateInput =
  | { prompt: string; messages?: undefined; tokens?: undefined }
  | { messages: ChatMessage[]; prompt?: undefined; tokens?: undefined }
  | { tokens: number[]; prompt?: undefined; messages?: undefined };

/** Options of one generation. */
export interface GenerateOptions {
  params?: SamplingParams;
  /** Aborting cancels the generation in the engine. */
  signal?: AbortSignal;
  /** Wall-clock limit in ms (0 or absent: none); past it the generation ends with finish reason `time_limit`. */
  timeLimitMs?: number;
}

/** Options of the engine process-wide (the CPU worker pool is shared by all instances). */
export interface EngineOptions {
  /** CPU worker pool threads (0: one per physical core); fixed by the first model load. */
  threads?: number;
}

/** One engine instance with its own model registry. */
export class Engine {
  readonly #native: Native.Engine;

  constructor(options: EngineOptions = {}) {
    const b = binding();
    if (options.threads !== undefined) configureKernels(options.threads);
    this.#native = new b.Engine();
  }

  /** Loads a model off the JS thread; resolves when it is ready. */
  loadModel(options: LoadOptions): Promise<ModelInfo> {
    return nativeAsync(() => this.#native.loadModel(options));
  }

  /** Unloads a model (in-flight work on it finishes). False if unknown. */
  unloadModel(name: string): boolean {
    return this.#native.unloadModel(name);
  }

  listModels(): ModelInfo[] {
    return this.#native.listModels();
  }

  modelInfo(name: string): ModelInfo {
    return native(() => this.#native.modelInfo(name));
  }

  /** Starts a generation; iterate the result for text. */
  generate(model: string, input: GenerateInput, options: GenerateOptions = {}): Generation {
    const request: Native.GenerateRequest = { ...input, params: options.params };
    return new Generation((onEvent) => this.#native.generate(model, request, onEvent), options.signal, options.timeLimitMs);
  }

  tokenize(model: string, text: string, addBos = false): number[] {
    return native(() => this.#native.tokenize(model, text, addBos));
  }

  detokenize(model: string, ids: number[], skipSpecial = false): string {
    return native(() => this.#native.detokenize(model, ids, skipSpecial));
  }

  applyChatTemplate(model: string, messages: ChatMessage[]): string {
    return native(() => this.#native.applyChatTemplate(model, messages));
  }

  schedulerStats(model: string): SchedulerStats {
    return native(() => this.#native.schedulerStats(model));
  }

  /** L2-normalised embeddings. `truncate: false` makes over-long input an error. */
  embed(model: string, texts: string[], options: { truncate?: boolean } = {}): Promise<Float32Array[]> {
    return nativeAsync(() => this.#native.embed(model, texts, options.truncate ?? true));
  }

  countEmbeddingTokens(model: string, texts: string[]): number[] {
    return native(() => this.#native.countEmbeddingTokens(model, texts));
  }

  /** Raw cross-encoder logits, one per document, in document order. */
  rerank(model: string, query: string, documents: string[], options: { truncate?: boolean } = {}): Promise<number[]> {
    return nativeAsync(() => this.#native.rerank(model, query, documents, options.truncate ?? true));
  }
}

/**
 * Sizes the engine's CPU worker pool (0: one thread per physical core).
 * Call before the first model loads; afterwards only the same size is accepted.
 */
export function configureKernels(threads: number): KernelInfo {
  return native(() => binding().configureKernels(threads));
}

/** The CPU kernels in use: pool threads and instruction set. */
export function kernelInfo(): KernelInfo {
  return binding().kernelInfo();
}

/** Process and device memory figures. */
export function memoryInfo(): MemoryInfo {
  return binding().memoryInfo();
}
