/** GET /metrics: Prometheus text exposition. */
import { Router } from 'express';
import type { Metrics } from '../../services/metrics.ts';

export function createMetricsRoutes(metrics: Metrics): Router {
  const r = Router();
  r.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });
  return r;
}
