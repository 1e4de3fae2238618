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

/** Token counts in OpenAI's field names. */
export interface UsageJson {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Prompt tokens whose K/V came from the prefix cache (OpenAI's `cached_tokens`). */
  prompt_tokens_details: { cached_tokens: number };
}

/** A generation's token counts as {@link UsageJson}. */
export function usageJson(r: GenerationResult): UsageJson {
  return {
    prompt_tokens: r.usage.promptTokens,
    completion_tokens: r.usage.completionTokens,
    total_tokens: r.usage.totalTokens,
    prompt_tokens_details: { cached_tokens: r.usage.cachedPromptTokens },
  };
}
