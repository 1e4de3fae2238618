/**
 * A generation as JS sees it: an async iterator of text chunks, a promise of
 * the final result, and cancellation by `cancel()` or an `AbortSignal`.
 *
 * Events are pushed by the engine's scheduler thread (through a thread-safe
 * function) and buffered here until the consumer pulls them.
 *
 * Back-pressure: once iteration has started, a chunk is acknowledged to the
 * engine only when the consumer pulls it, so a consumer that stops pulling
 * (e.g. it awaits a socket's 'drain') makes the engine pause this sequence
 * after a few dozen tokens instead of filling memory. Before iteration
 * starts (or if it never does: callers awaiting only `result`), chunks are
 * acknowledged on arrival, so such callers never stall the engine.
 *
 * A wall-clock limit cancels the generation in the engine when it runs past
 * it; the result then says `time_limit` (not `cancelled`, which means the
 * caller gave up), with the text generated so far.
 */
import type * as Native from '../../native/node/binding.d.ts';
import { EngineError, toEngineError } from './errors.ts';

export type GenerationResult = Native.GenerationResult;

/** Finish reason of a generation stopped by its wall-clock limit. */
export const TIME_LIMIT = 'time_limit';

/** One piece of generated text. */
export interface TokenChunk {
  text: string;
  tokenIds: number[];
}

/** A submitted generation. Iterate it for text; await `result` for usage and timings. */
export class Generation implements AsyncIterable<TokenChunk> {
  readonly id: number;
  readonly promptTokens: number;
  /** Resolves with the final record, whatever the finish reason. */
  readonly result: Promise<GenerationResult>;

  #native: Native.Generation | undefined;
  #chunks: { chunk: TokenChunk; acked: boolean }[] = [];
  #iterating = false;
  #done: GenerationResult | undefined;
  #wake: (() => void) | undefined;
  #resolveResult!: (r: GenerationResult) => void;
  #signal: AbortSignal | undefined;
  #onAbort = (): void => this.cancel();
  #deadline: NodeJS.Timeout | undefined;
  #timedOut = false;

  /** @internal Use `Engine.generate`. */
  constructor(start: (onEvent: (e: Native.GenerationEvent) => void) => Native.Generation, signal?: AbortSignal, timeLimitMs = 0) {
    this.result = new Promise((resolve) => {
      this.#resolveResult = resolve;
    });
    if (signal?.aborted) throw new EngineError('CANCELLED', 'the request was aborted before it started');
    try {
      this.#native = start((e) => this.#onEvent(e));
    } catch (err) {
      throw toEngineError(err);
    }
    this.id = this.#native.id;
    this.promptTokens = this.#native.promptTokens;
    this.#signal = signal;
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    if (timeLimitMs > 0 && this.#native) {
      this.#deadline = setTimeout(() => {
        this.#timedOut = true;
        this.cancel();
      }, timeLimitMs);
      this.#deadline.unref();
    }
  }

  #onEvent(e: Native.GenerationEvent): void {
    const acked = e.kind !== 'token' || !this.#iterating;
    if (acked) this.#native?.consumed(1);
    if (e.kind === 'token') {
      this.#chunks.push({ chunk: { text: e.text ?? '', tokenIds: e.tokenIds ?? [] }, acked });
    } else if (e.result) {
      clearTimeout(this.#deadline);
      const r = this.#timedOut && e.result.finishReason === 'cancelled' ? { ...e.result, finishReason: TIME_LIMIT } : e.result;
      this.#done = r;
      this.#signal?.removeEventListener('abort', this.#onAbort);
      this.#native = undefined;
      this.#resolveResult(r);
    }
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Stops the generation; the engine ends it within one step. */
  cancel(): void {
    this.#native?.cancel();
  }

  /** True once the final event has arrived. */
  get finished(): boolean {
    return this.#done !== undefined;
  }

  /** Iterates the text. Leaving the loop early cancels the generation. */
  async *[Symbol.asyncIterator](): AsyncIterator<TokenChunk> {
    try {
      yield* this.#drain();
    } finally {
      if (!this.#done) this.cancel();
    }
  }

  async *#drain(): AsyncGenerator<TokenChunk> {
    this.#iterating = true;
    for (;;) {
      const next = this.#chunks.shift();
      if (next) {
        if (!next.acked) this.#native?.consumed(1);
        yield next.chunk;
        continue;
      }
      if (this.#done) {
        if (this.#done.finishReason === 'error') {
          throw new EngineError(
            (this.#done.errorCode as EngineError['code'] | undefined) ?? 'INTERNAL',
            this.#done.errorMessage ?? 'generation failed',
          );
        }
        return;
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /** Consumes the whole generation and returns its final record. */
  async collect(): Promise<GenerationResult> {
    for await (const _ of this) {
      // the text is also in the result
    }
    return this.result;
  }
}
