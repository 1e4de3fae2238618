/** Probes: liveness, readiness (models loaded), device, and server stats. */
import { Router, type Request, type Response } from 'express';
import { kernelInfo, memoryInfo } from '../../engine/index.ts';
import type { ModelService } from '../../services/model-service.ts';

/** Options of {@link createHealthRoutes}. */
export interface HealthRoutesOptions {
  models: ModelService;
  startedAt: number;
  /** Pipeline settings reported by /health/stats. */
  settings: Record<string, unknown>;
  /** Other parts that must be ready (e.g. documents), by name: 'ready' or another state. */
  components?: () => Record<string, string>;
  /** Guards' state for /health/stats (cache, cost breaker, limits). */
  guards?: () => Promise<Record<string, unknown>>;
}

export function createHealthRoutes(options: HealthRoutesOptions): Router {
  const r = Router();
  const live = (_req: Request, res: Response) => {
    res.json({ status: 'ok' });
  };
  r.get('/health', live);
  r.get('/health/live', live);
  r.get('/health/ready', (_req, res) => {
    const models = options.models.statuses();
    const components = options.components?.() ?? {};
    const ready = models.every((m) => m.status === 'ready') && Object.values(components).every((c) => c === 'ready');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', models, components });
  });
  r.get('/health/gpu', (_req, res) => {
    const m = memoryInfo();
    const k = kernelInfo();
    res.json({
      device: m.device,
      gpu: m.device.startsWith('cuda'),
      cuda_compiled: m.cudaCompiled,
      message: m.device === 'cpu' ? 'running on CPU: no GPU in use; process memory reported instead' : undefined,
      device_memory_used_bytes: m.deviceUsedBytes ?? null,
      device_memory_total_bytes: m.deviceTotalBytes ?? null,
      process_rss_bytes: m.processRssBytes,
      cpu_features: m.cpuFeatures,
      // The CPU kernels chosen at run time and the size of the engine's pool.
      cpu_kernels: { isa: k.isa, threads: k.threads },
    });
  });
  r.get('/health/stats', async (_req, res) => {
    const registry = options.models;
    const models = registry.listModels().map((m) => ({
      name: m.name,
      role: m.role,
      status: m.status,
      scheduler: m.role === 'llm' && m.status === 'ready' ? registry.schedulerStats(m.name) : undefined,
    }));
    res.json({
      uptime_s: (Date.now() - options.startedAt) / 1000,
      models,
      settings: options.settings,
      ...(await options.guards?.()),
      memory: { process_rss_bytes: memoryInfo().processRssBytes },
    });
  });
  return r;
}
