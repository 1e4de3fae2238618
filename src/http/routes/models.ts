/** GET /v1/models (OpenAI list shape, with Candela's details), load and unload. */
import { Router } from 'express';
import type { ModelInfo } from '../../engine/index.ts';
import type { ModelService } from '../../services/model-service.ts';
import { HttpError } from '../errors.ts';

/** For embedders: pooling, what the server uses it for (retrieval, cache) and its query instruction. */
function embedderDetails(m: ModelInfo, models: ModelService) {
  if (m.role !== 'embedder') return {};
  const spec = models.specs.find((s) => s.name === m.name);
  const serves = (['retrieval', 'cache'] as const).filter((use) => models.embedderFor(use)?.name === m.name);
  return { pooling: m.pooling ?? null, serves, query_instruction: spec?.queryInstruction ?? null };
}

function describe(m: ModelInfo, created: number, models: ModelService) {
  return {
    id: m.name,
    object: 'model',
    created,
    owned_by: 'candela',
    role: m.role,
    status: m.status,
    failure: m.failure ?? null,
    architecture: m.architecture ?? null,
    quantization: m.quantization ?? null,
    parameters: m.parameterCount ?? null,
    context_length: m.contextLength ?? null,
    dimensions: m.dimensions ?? null,
    device: m.device ?? null,
    memory_bytes: m.bytesInMemory ?? null,
    disk_bytes: m.bytesOnDisk,
    load_ms: m.loadMs ?? null,
    ...embedderDetails(m, models),
  };
}

export function createModelRoutes(models: ModelService): Router {
  const r = Router();
  const created = Math.floor(Date.now() / 1000);
  r.get('/v1/models', (_req, res) => {
    res.json({ object: 'list', data: models.listModels().map((m) => describe(m, created, models)) });
  });
  r.get('/v1/models/:id', (req, res) => {
    res.json(describe(models.modelInfo(req.params.id), created, models));
  });
  r.post('/v1/models/:id/load', async (req, res) => {
    const spec = models.specs.find((s) => s.name === req.params.id);
    if (!spec) throw new HttpError(404, 'model_not_found', `model '${req.params.id}' is not configured on this server`);
    const info = await models.load(spec);
    if (!info) throw new HttpError(503, 'load_failed', models.modelInfo(spec.name).failure ?? 'load failed');
    res.json(describe(info, created, models));
  });
  r.post('/v1/models/:id/unload', (req, res) => {
    if (!models.unload(req.params.id)) throw new HttpError(404, 'model_not_found', `model '${req.params.id}' is not loaded`);
    res.json({ id: req.params.id, object: 'model', status: 'unloaded' });
  });
  return r;
}
