/**
 * Strict JSON bodies: wrong content type → 415, over the limit → 413,
 * invalid UTF-8 → 400, malformed JSON → 400. Decoding is done here, once,
 * with a fatal UTF-8 decoder, so no handler ever sees replacement characters.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { HttpError } from '../errors.ts';

/** Options of {@link createJsonBody}. */
export interface JsonBodyOptions {
  /** Maximum body size in bytes. */
  limit: number;
  /** Requests whose multipart/form-data body the route reads itself (uploads). */
  multipart?: (req: Request) => boolean;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Creates the JSON body middleware (applies to requests that carry a body). */
export function createJsonBody(options: JsonBodyOptions) {
  const raw = express.raw({ type: () => true, limit: options.limit });
  return function jsonBody(req: Request, res: Response, next: NextFunction): void {
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    if (!hasBody) {
      req.body = undefined;
      next();
      return;
    }
    if (options.multipart?.(req) && req.is('multipart/form-data')) {
      next();
      return;
    }
    if (!req.is('application/json')) {
      next(new HttpError(415, 'unsupported_media_type', `Content-Type must be application/json, got '${req.get('content-type') ?? 'none'}'`));
      return;
    }
    raw(req, res, (err?: unknown) => {
      if (err) {
        const e = err as { type?: string; status?: number; limit?: number };
        if (e.type === 'entity.too.large') {
          next(new HttpError(413, 'payload_too_large', `request body exceeds the limit of ${options.limit} bytes`));
        } else {
          next(new HttpError(e.status ?? 400, 'bad_request', 'could not read the request body', { cause: err }));
        }
        return;
      }
      let text: string;
      try {
        text = decoder.decode(req.body as Buffer);
      } catch {
        next(new HttpError(400, 'invalid_utf8', 'request body is not valid UTF-8'));
        return;
      }
      try {
        req.body = JSON.parse(text) as unknown;
      } catch (e) {
        next(new HttpError(400, 'invalid_json', `malformed JSON: ${(e as Error).message}`));
        return;
      }
      next();
    });
  };
}
