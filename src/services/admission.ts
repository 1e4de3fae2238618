/**
 * A bounded admission queue for one model: at most `concurrency` calls run
 * at once, at most `maxQueue` more wait (in arrival order), and a call past
 * that is refused at once with `OVERLOADED` (HTTP 429 + Retry-After) instead
 * of waiting without bound. A waiting call whose signal aborts (its client
 * left) leaves the queue without ever reaching the engine.
 *
 * Single-threaded by construction (the JS thread): no locks.
 */
import { EngineError } from '../engine/index.ts';

/** Options of {@link AdmissionQueue}. */
export interface AdmissionOptions {
  /** Calls allowed to run at once (≥ 1). */
  concurrency: number;
  /** Calls allowed to wait for a slot (0: none wait; a call past `concurrency` is refused). */
  maxQueue: number;
}

interface Waiter {
  grant: (release: () => void) => void;
}

/** One model's slots and waiting line. */
export class AdmissionQueue {
  readonly #name: string;
  readonly #o: AdmissionOptions;
  readonly #waiting: Waiter[] = [];
  #running = 0;

  constructor(name: string, options: AdmissionOptions) {
    this.#name = name;
    this.#o = { concurrency: Math.max(1, options.concurrency), maxQueue: Math.max(0, options.maxQueue) };
  }

  /** Calls holding a slot. */
  get running(): number {
    return this.#running;
  }

  /** Calls waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Resolves with a `release` function once a slot is free (call it exactly
   * once, when the work has ended). Throws `OVERLOADED` when the line is
   * full, `CANCELLED` when `signal` aborts first.
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(cancelled(this.#name));
    if (this.#running < this.#o.concurrency && this.#waiting.length === 0) return Promise.resolve(this.#take());
    if (this.#waiting.length >= this.#o.maxQueue) {
      return Promise.reject(
        new EngineError('OVERLOADED', `model '${this.#name}' is busy: ${this.#running} running, ${this.#waiting.length} waiting (limit ${this.#o.maxQueue}); retry shortly`),
      );
    }
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.#waiting.indexOf(waiter);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(cancelled(this.#name));
      };
      const waiter: Waiter = {
        grant: (release) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  #take(): () => void {
    this.#running++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#running--;
      const next = this.#waiting.shift();
      if (next) next.grant(this.#take());
    };
  }
}

function cancelled(model: string): EngineError {
  return new EngineError('CANCELLED', `the call to '${model}' was cancelled before it ran (the client left)`);
}
