/** Small pieces every model-serving route needs: the model to use, and usage in OpenAI's field names. */
import type { GenerationResult, ModelRole } from '../engine/index.ts';
import type { ModelService } from '../services/model-service.ts';
import { HttpError } from './errors.ts';

const ROLE_NAMES: Record<ModelRole, string> = { llm: 'LLM', embedder: 'embedding model', reranker: 'reranker model' };

/** The requested model, or the server's default for `role`; 404 when there is none. */
export function modelFor(models: ModelService, role: ModelRole, requested: string | undefined): string {
  const name = requested ?? models.defaultModel(role);
  if (!name) throw new HttpError(404, 'model_not_found', `no ${ROLE_NAMES[role]} is configured on this server`);
  return name;
}

/** A generation's token counts as `{prompt_tokens, completion_tokens, total_tokens}`. */
export function usageJson(r: GenerationResult): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  return { prompt_tokens: r.usage.promptTokens, completion_tokens: r.usage.completionTokens, total_tokens: r.usage.totalTokens };
}
