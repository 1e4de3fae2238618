/**
 * Embeddings: POST /v1/embed (TEI-like: `{inputs, truncate}` → vectors) and
 * POST /v1/embeddings (OpenAI: `{input, model}` → list of embedding objects).
 * `input_type: "query"` (as Voyage's API names it) puts the model's query
 * instruction (BGE's "Represent this sentence…") before each text; passages
 * ("document", the default) are embedded as given.
 */
import { Router } from 'express';
import { z } from 'zod';
import type { InferenceService } from '../../services/inference.ts';
import type { ModelService } from '../../services/model-service.ts';
import { HttpError } from '../errors.ts';
import { validate } from '../validate.ts';
import { contextOf } from '../middleware/request-context.ts';
import { clientGone } from '../sse.ts';
import { modelFor } from '../route-helpers.ts';
import { float32ToBase64 } from '../../util/vector-base64.ts';

/** Most texts one request may embed. */
export const MAX_EMBED_INPUTS = 256;

const Text = z.string().min(1, 'must not be empty');
const InputType = z.enum(['query', 'document']).optional();
export const TeiBody = z.object({
  inputs: z.union([Text, z.array(Text).min(1).meta({ maxItems: MAX_EMBED_INPUTS })]),
  model: z.string().min(1).optional(),
  truncate: z.boolean().default(false),
  input_type: InputType,
});
export const OpenAiBody = z.object({
  input: z.union([Text, z.array(Text).min(1).meta({ maxItems: MAX_EMBED_INPUTS })]),
  model: z.string().min(1).optional(),
  input_type: InputType,
  encoding_format: z.enum(['float', 'base64']).default('float'),
  dimensions: z.number().int().positive().optional(),
  user: z.string().optional(),
});

function asList(input: string | string[], param: string): string[] {
  const list = Array.isArray(input) ? input : [input];
  if (list.length > MAX_EMBED_INPUTS) {
    throw new HttpError(413, 'too_many_items', `at most ${MAX_EMBED_INPUTS} inputs per request, got ${list.length}`, { param });
  }
  return list;
}

/** The texts to embed: queries get the model's query instruction before them. */
function withInstruction(models: ModelService, model: string, texts: string[], inputType: 'query' | 'document' | undefined): string[] {
  const instruction = inputType === 'query' ? (models.specs.find((s) => s.name === model)?.queryInstruction ?? '') : '';
  return instruction ? texts.map((t) => instruction + t) : texts;
}

/** The embedding routes; the model calls go through `inference` (admission). */
export function createEmbeddingRoutes(models: ModelService, inference: InferenceService): Router {
  const r = Router();
  r.post('/v1/embed', async (req, res) => {
    const body = validate(TeiBody, req.body);
    const model = modelFor(models, 'embedder', body.model);
    const signal = clientGone(res);
    const vectors = await inference.embed(model, withInstruction(models, model, asList(body.inputs, 'inputs'), body.input_type), { truncate: body.truncate, signal }, contextOf(res));
    if (signal.aborted) return; // the client is gone
    res.json(vectors.map((v) => Array.from(v)));
  });
  r.post('/v1/embeddings', async (req, res) => {
    const body = validate(OpenAiBody, req.body);
    const model = modelFor(models, 'embedder', body.model);
    const texts = withInstruction(models, model, asList(body.input, 'input'), body.input_type);
    const signal = clientGone(res);
    const { vectors, promptTokens: tokens } = await inference.embedWithUsage(model, texts, { truncate: true, signal }, contextOf(res));
    if (signal.aborted) return; // the client is gone
    const dims = vectors[0]?.length ?? 0;
    if (body.dimensions !== undefined && body.dimensions !== dims) {
      throw new HttpError(422, 'invalid_dimensions', `model '${model}' produces ${dims} dimensions; it cannot give ${body.dimensions}`, { param: 'dimensions' });
    }
    res.json({
      object: 'list',
      model,
      data: vectors.map((v, index) => ({
        object: 'embedding',
        index,
        embedding: body.encoding_format === 'base64' ? float32ToBase64(v) : Array.from(v),
      })),
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  });
  return r;
}
