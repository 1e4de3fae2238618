/**
 * POST /v1/generate and /v1/generate/stream: text generation from a prompt or
 * chat messages. The stream is SSE with `token` events, then one `done`
 * (request id, model, usage, timings, token count, tokens/s, finish reason)
 * or one `error` event. A client that disconnects cancels the generation.
 */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { GenerateInput, GenerationResult, SamplingParams } from '../../engine/index.ts';
import type { InferenceService } from '../../services/inference.ts';
import type { ModelService } from '../../services/model-service.ts';
import { toHttpError } from '../errors.ts';
import { requestIdOf } from '../middleware/request-id.ts';
import { clientGone, openSse } from '../sse.ts';
import { contextOf } from '../middleware/request-context.ts';
import { validate } from '../validate.ts';
import { modelFor, usageJson } from '../route-helpers.ts';

const Message = z.object({ role: z.enum(['system', 'user', 'assistant', 'tool']), content: z.string() });

/** Sampling fields shared by the generation routes. */
export const SamplingFields = {
  max_tokens: z.number().int().min(1).max(32_768).default(256),
  temperature: z.number().min(0).max(2).default(0),
  top_p: z.number().gt(0).max(1).default(1),
  top_k: z.number().int().min(0).max(1000).default(0),
  repetition_penalty: z.number().gt(0).max(10).default(1),
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  stop: z.union([z.string().min(1), z.array(z.string().min(1)).max(8)]).optional(),
  /** Keep generating past end-of-sequence tokens (vLLM's extension; benchmarks). */
  ignore_eos: z.boolean().default(false),
  /** Reuse the K/V of a cached prompt prefix (llama.cpp's name; outputs are the same either way). */
  cache_prompt: z.boolean().default(true),
};

export const GenerateBody = z
  .object({
    model: z.string().min(1).optional(),
    prompt: z.string().min(1, 'must not be empty').optional(),
    messages: z.array(Message).min(1).optional(),
    ...SamplingFields,
  })
  .refine((b) => (b.prompt === undefined) !== (b.messages === undefined), { message: 'give exactly one of prompt or messages', path: ['prompt'] })
  // The refinement in JSON Schema terms, for the OpenAPI document.
  .meta({ oneOf: [{ required: ['prompt'] }, { required: ['messages'] }] });

type GenerateBody = z.infer<typeof GenerateBody>;

/** Engine sampling params from validated request fields. */
export function samplingParams(b: {
  max_tokens: number;
  temperature: number;
  top_p: number;
  top_k: number;
  repetition_penalty: number;
  seed?: number | undefined;
  stop?: string | string[] | undefined;
  ignore_eos: boolean;
  cache_prompt?: boolean;
}): SamplingParams {
  return {
    maxTokens: b.max_tokens,
    temperature: b.temperature,
    topP: b.top_p,
    topK: b.top_k,
    repetitionPenalty: b.repetition_penalty,
    seed: b.seed,
    stop: b.stop === undefined ? undefined : Array.isArray(b.stop) ? b.stop : [b.stop],
    ignoreEos: b.ignore_eos,
    cachePrompt: b.cache_prompt ?? true,
  };
}

function summary(model: string, requestId: string, r: GenerationResult) {
  return {
    request_id: requestId,
    model,
    text: r.text,
    finish_reason: r.finishReason,
    usage: usageJson(r),
    timings: {
      queue_ms: r.timings.queueMs,
      ttft_ms: r.timings.ttftMs,
      prefill_ms: r.timings.prefillMs,
      decode_ms: r.timings.decodeMs,
      total_ms: r.timings.totalMs,
    },
    token_count: r.usage.completionTokens,
    tokens_per_sec: r.timings.tokensPerSec,
    seed: r.seed,
  };
}

export function createGenerateRoutes(models: ModelService, inference: InferenceService, options: { heartbeatMs: number }): Router {
  const r = Router();
  const start = async (body: GenerateBody, signal: AbortSignal, res: Response) => {
    const model = modelFor(models, 'llm', body.model);
    const input: GenerateInput = body.messages ? { messages: body.messages } : { prompt: body.prompt ?? '' };
    return { model, gen: await inference.generate(model, input, { params: samplingParams(body), signal }, contextOf(res)) };
  };

  r.post('/v1/generate', async (req: Request, res: Response) => {
    const body = validate(GenerateBody, req.body);
    const { model, gen } = await start(body, clientGone(res), res);
    const result = await gen.collect();
    if (result.finishReason === 'cancelled') return; // the client is gone
    res.json(summary(model, requestIdOf(res), result));
  });

  r.post('/v1/generate/stream', async (req: Request, res: Response) => {
    const body = validate(GenerateBody, req.body);
    // Errors before the first byte (unknown model, context overflow…) are plain HTTP errors.
    const ac = new AbortController();
    const { model, gen } = await start(body, ac.signal, res);
    const stream = openSse(req, res, options);
    stream.signal.addEventListener('abort', () => ac.abort(), { once: true });
    stream.send('meta', { request_id: requestIdOf(res), model, prompt_tokens: gen.promptTokens });
    try {
      for await (const chunk of gen) if (!stream.send('token', { text: chunk.text })) await stream.drain();
      const result = await gen.result;
      if (result.finishReason !== 'cancelled') stream.send('done', summary(model, requestIdOf(res), result));
    } catch (err) {
      const e = toHttpError(err);
      stream.send('error', { code: e.code, message: e.message, request_id: requestIdOf(res) });
    } finally {
      stream.close();
    }
  });
  return r;
}
