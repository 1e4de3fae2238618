/** Records every request's duration and status under its route template. */
import type { NextFunction, Request, Response } from 'express';
import type { Metrics } from '../../services/metrics.ts';

/** The route template of a matched request (`/v1/models/:id`), or `unmatched`. */
export function routeTemplate(req: Request): string {
  const route = req.route as { path?: string } | undefined;
  return route?.path ? `${req.baseUrl}${route.path}` : 'unmatched';
}

export function createHttpMetrics(metrics: Metrics): (req: Request, res: Response, next: NextFunction) => void {
  return function httpMetrics(req, res, next) {
    const start = process.hrtime.bigint();
    res.on('close', () => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      metrics.observeHttp(req.method, routeTemplate(req), res.statusCode, seconds);
    });
    next();
  };
}
