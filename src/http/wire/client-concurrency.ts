/**
 * A cap on concurrent requests per client (its API key when it sent one,
 * otherwise its address), so one client cannot take every engine slot and
 * queue place. Past the cap: 429 with Retry-After. Probes and /metrics are
 * not counted.
 */
import type { NextFunction, Request, Response } from 'express';
import { PROBE_PATHS } from '../access.ts';
import { HttpError } from '../errors.ts';
import { contextOf } from '../middleware/request-context.ts';

/** Options of {@link createClientConcurrency}. */
export interface ClientConcurrencyOptions {
  /** Requests one client may have in flight (0: no cap). */
  maxPerClient: number;
  onLimited?: () => void;
}

/** Creates the per-client concurrency cap; put it after auth (it counts per key). */
export function createClientConcurrency(options: ClientConcurrencyOptions): (req: Request, res: Response, next: NextFunction) => void {
  const inFlight = new Map<string, number>();
  return function clientConcurrency(req, res, next) {
    if (options.maxPerClient <= 0 || PROBE_PATHS.includes(req.path) || req.path === '/metrics') {
      next();
      return;
    }
    const { identity } = contextOf(res);
    const client = identity.keyId !== undefined ? `key:${identity.keyId}` : `ip:${identity.ip}`;
    const n = inFlight.get(client) ?? 0;
    if (n >= options.maxPerClient) {
      options.onLimited?.();
      next(
        new HttpError(429, 'too_many_concurrent_requests', `at most ${options.maxPerClient} requests per client may be in flight at once`, {
          retryAfter: 1,
        }),
      );
      return;
    }
    inFlight.set(client, n + 1);
    // 'close' fires once per response, finished or aborted.
    res.once('close', () => {
      const left = (inFlight.get(client) ?? 1) - 1;
      if (left <= 0) inFlight.delete(client);
      else inFlight.set(client, left);
    });
    next();
  };
}
