/**
 * Request rate limits per API key and per client address, with the
 * RateLimit-Limit / -Remaining / -Reset headers on every limited route and
 * 429 + Retry-After past the limit. Probes and /metrics are not counted.
 */
import type { NextFunction, Request, Response } from 'express';
import { RateLimitedError, type LimitState, type RateLimits } from '../../services/rate-limits.ts';
import { PROBE_PATHS } from '../access.ts';
import { HttpError } from '../errors.ts';
import { contextOf } from './request-context.ts';

export function setLimitHeaders(res: Response, s: LimitState): void {
  res.setHeader('RateLimit-Limit', String(s.limit));
  res.setHeader('RateLimit-Remaining', String(Math.max(0, s.remaining)));
  res.setHeader('RateLimit-Reset', String(Math.max(0, s.resetS)));
}

export function createRateLimit(limits: RateLimits): (req: Request, res: Response, next: NextFunction) => void {
  return function rateLimit(req, res, next) {
    if (PROBE_PATHS.includes(req.path) || req.path === '/metrics') {
      next();
      return;
    }
    limits.request(contextOf(res).identity).then(
      (state) => {
        if (state) setLimitHeaders(res, state);
        next();
      },
      (err: unknown) => {
        if (err instanceof RateLimitedError) setLimitHeaders(res, err.state);
        next(err instanceof RateLimitedError ? err : new HttpError(503, 'rate_limit_unavailable', 'rate limits cannot be checked right now', { retryAfter: 1, cause: err }));
      },
    );
  };
}
