/**
 * POST /v1/rerank, Cohere/Jina-compatible: `{query, documents, top_n,
 * return_documents}` → `{results: [{index, relevance_score, document?}]}`
 * sorted by score. Documents may be strings or `{text}` objects. Scores are
 * the cross-encoder's raw logits (TEI's `raw_scores`); order is what matters.
 */
import { Router } from 'express';
import { z } from 'zod';
import type { InferenceService } from '../../services/inference.ts';
import type { ModelService } from '../../services/model-service.ts';
import { HttpError } from '../errors.ts';
import { requestIdOf } from '../middleware/request-id.ts';
import { validate } from '../validate.ts';
import { contextOf } from '../middleware/request-context.ts';
import { clientGone } from '../sse.ts';
import { modelFor } from '../route-helpers.ts';

/** Most documents one rerank request may score. */
export const MAX_RERANK_DOCUMENTS = 1000;

const Doc = z.union([z.string().min(1, 'must not be empty'), z.object({ text: z.string().min(1, 'must not be empty') }).transform((d) => d.text)]);
export const RerankBody = z.object({
  model: z.string().min(1).optional(),
  query: z.string().min(1, 'must not be empty'),
  documents: z.array(Doc).min(1).meta({ maxItems: MAX_RERANK_DOCUMENTS }),
  top_n: z.number().int().min(1).optional(),
  return_documents: z.boolean().default(false),
  truncate: z.boolean().default(true),
});

/** The rerank route; the model call goes through `inference` (admission). */
export function createRerankRoutes(models: ModelService, inference: InferenceService): Router {
  const r = Router();
  r.post('/v1/rerank', async (req, res) => {
    const body = validate(RerankBody, req.body);
    if (body.documents.length > MAX_RERANK_DOCUMENTS) {
      throw new HttpError(413, 'too_many_items', `at most ${MAX_RERANK_DOCUMENTS} documents per request`, { param: 'documents' });
    }
    const model = modelFor(models, 'reranker', body.model);
    const signal = clientGone(res);
    const scores = await inference.rerank(model, body.query, body.documents, { truncate: body.truncate, signal }, contextOf(res));
    if (signal.aborted) return; // the client is gone
    const results = scores
      .map((score, index) => ({ index, relevance_score: score, ...(body.return_documents ? { document: { text: body.documents[index] } } : {}) }))
      .sort((a, b) => b.relevance_score - a.relevance_score)
      .slice(0, body.top_n ?? scores.length);
    res.json({ id: requestIdOf(res), model, results, meta: { billed_units: { search_units: 1 } } });
  });
  return r;
}
