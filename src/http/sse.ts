/**
 * Server-sent events: unbuffered headers, named events with JSON data,
 * heartbeat comments while the producer is quiet, and a signal that fires
 * when the client goes away (so the work below can be cancelled).
 *
 * Back-pressure: `send` returns false once the socket's buffer is full
 * (what `res.write` said); a producer then awaits `drain()` before pulling
 * more, so a client that stops reading stops the generation below it
 * instead of making Node buffer the whole answer.
 */
import type { Request, Response } from 'express';

/** Options of {@link openSse}. */
export interface SseOptions {
  /** Milliseconds between heartbeat comments. */
  heartbeatMs: number;
}

/** An open event stream. */
export interface SseStream {
  /**
   * Sends one event; `event` undefined sends an unnamed `data:` line (OpenAI
   * style). False when the socket's buffer is full: await {@link SseStream.drain}.
   */
  send(event: string | undefined, data: unknown): boolean;
  /** Sends a raw `data:` payload (e.g. `[DONE]`). */
  sendRaw(data: string): boolean;
  /** Resolves once the socket can take more (at once if it can), or the stream is closed. */
  drain(): Promise<void>;
  /** Ends the stream. */
  close(): void;
  /** Aborts when the client disconnects before {@link SseStream.close}. */
  readonly signal: AbortSignal;
}

/** Starts an SSE response. */
export function openSse(req: Request, res: Response, options: SseOptions): SseStream {
  const ac = new AbortController();
  let closed = false;
  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-cache, no-transform');
  res.setHeader('Connection', 'keep-alive');
  res.setHeader('X-Accel-Buffering', 'no');
  res.flushHeaders();
  req.socket.setNoDelay(true);
  const heartbeat = setInterval(() => {
    // A client that is not reading needs no heartbeat, and must not get more bytes buffered.
    if (!closed && !res.writableNeedDrain) res.write(': keep-alive\n\n');
  }, options.heartbeatMs);
  heartbeat.unref();
  res.on('close', () => {
    clearInterval(heartbeat);
    if (!closed) {
      closed = true;
      ac.abort();
    }
  });
  return {
    signal: ac.signal,
    send(event, data) {
      if (closed) return true;
      return res.write(`${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`);
    },
    sendRaw(data) {
      return closed ? true : res.write(`data: ${data}\n\n`);
    },
    drain() {
      if (closed || !res.writableNeedDrain) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = (): void => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    },
    close() {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      res.end();
    },
  };
}

/** An AbortSignal that fires when a non-streaming client disconnects before the answer. */
export function clientGone(res: Response): AbortSignal {
  const ac = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  return ac.signal;
}
