/**
 * Body-read timeout: a request whose body has not fully arrived within
 * `timeoutMs` of its headers (a truncated body, a client dripping bytes)
 * gets 408 and its connection is closed, so a few slow clients cannot hold
 * connections and handlers open for minutes.
 */
import type { NextFunction, Request, Response } from 'express';
import { HttpError } from '../errors.ts';
import { requestIdOf } from '../middleware/request-id.ts';

/** Options of {@link createBodyTimeout}. */
export interface BodyTimeoutOptions {
  /** Milliseconds from the headers to the body's last byte. */
  timeoutMs: number;
  /** Called when a request times out (metrics). */
  onTimeout?: () => void;
}

/** True when the request announces a body (a length above 0 or chunked encoding). */
export function hasBody(req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/** Creates the body-read timeout middleware; put it before anything that reads bodies. */
export function createBodyTimeout(options: BodyTimeoutOptions): (req: Request, res: Response, next: NextFunction) => void {
  return function bodyTimeout(req, res, next) {
    if (!hasBody(req) || req.complete) {
      next();
      return;
    }
    const timer = setTimeout(() => {
      if (req.complete) return;
      options.onTimeout?.();
      const err = new HttpError(408, 'request_timeout', `the request body did not arrive within ${options.timeoutMs} ms`);
      if (!res.headersSent) {
        res.status(408).setHeader('Connection', 'close');
        res.json({ ...err.toJSON(), request_id: requestIdOf(res) });
      }
      // The rest of the body will never be read: the connection cannot be reused.
      res.once('finish', () => req.socket.destroySoon());
      if (res.writableFinished || res.headersSent) req.socket.destroySoon();
    }, options.timeoutMs);
    timer.unref();
    const clear = (): void => clearTimeout(timer);
    req.once('end', clear);
    res.once('close', clear);
    res.once('finish', clear);
    next();
  };
}
