/** POST /v1/tokenize and /v1/detokenize, single or batch (LLM tokenizers). */
import { Router } from 'express';
import { z } from 'zod';
import type { InferenceService } from '../../services/inference.ts';
import type { ModelService } from '../../services/model-service.ts';
import { HttpError } from '../errors.ts';
import { validate } from '../validate.ts';
import { modelFor } from '../route-helpers.ts';

const MAX_BATCH = 256;

export const TokenizeBody = z.object({
  model: z.string().min(1).optional(),
  text: z.union([z.string(), z.array(z.string()).meta({ maxItems: MAX_BATCH })]),
  add_special_tokens: z.boolean().default(false),
});

export const DetokenizeBody = z.object({
  model: z.string().min(1).optional(),
  tokens: z.union([z.array(z.number().int().nonnegative()), z.array(z.array(z.number().int().nonnegative())).meta({ maxItems: MAX_BATCH })]),
  skip_special_tokens: z.boolean().default(false),
});

/** The tokenizer routes; the tokenizer calls go through `inference`. */
export function createTokenizeRoutes(models: ModelService, inference: InferenceService): Router {
  const r = Router();
  r.post('/v1/tokenize', (req, res) => {
    const body = validate(TokenizeBody, req.body);
    const model = modelFor(models, 'llm', body.model);
    const one = (t: string) => inference.tokenize(model, t, body.add_special_tokens);
    if (Array.isArray(body.text)) {
      if (body.text.length > MAX_BATCH) throw new HttpError(413, 'too_many_items', `at most ${MAX_BATCH} texts per request`, { param: 'text' });
      const tokens = body.text.map(one);
      res.json({ model, tokens, counts: tokens.map((t) => t.length) });
    } else {
      const tokens = one(body.text);
      res.json({ model, tokens, count: tokens.length });
    }
  });
  r.post('/v1/detokenize', (req, res) => {
    const body = validate(DetokenizeBody, req.body);
    const model = modelFor(models, 'llm', body.model);
    const batch = body.tokens.length > 0 && Array.isArray(body.tokens[0]);
    if (batch) {
      const lists = body.tokens as number[][];
      if (lists.length > MAX_BATCH) throw new HttpError(413, 'too_many_items', `at most ${MAX_BATCH} token lists per request`, { param: 'tokens' });
      res.json({ model, text: lists.map((t) => inference.detokenize(model, t, body.skip_special_tokens)) });
    } else {
      res.json({ model, text: inference.detokenize(model, body.tokens as number[], body.skip_special_tokens) });
    }
  });
  return r;
}
