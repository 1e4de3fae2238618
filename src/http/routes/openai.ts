/**
 * OpenAI-compatible generation: POST /v1/chat/completions and
 * /v1/completions, streaming (SSE `data:` chunks ending in `[DONE]`, with
 * `stream_options.include_usage`) and not. An error during a stream is sent
 * as `data: {"error": …}` followed by `[DONE]`. (GET /v1/models and
 * POST /v1/embeddings already have OpenAI's shapes.)
 */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { TIME_LIMIT, type GenerateInput, type Generation, type GenerationResult } from '../../engine/index.ts';
import type { InferenceService } from '../../services/inference.ts';
import type { ModelService } from '../../services/model-service.ts';
import { toHttpError } from '../errors.ts';
import { requestIdOf } from '../middleware/request-id.ts';
import { clientGone, openSse } from '../sse.ts';
import { contextOf } from '../middleware/request-context.ts';
import { validate } from '../validate.ts';
import { modelFor, usageJson } from '../route-helpers.ts';
import { SamplingFields, samplingParams } from './generate.ts';

const Content = z.union([
  z.string(),
  // Text parts only; other part types are not supported by text models.
  z.array(z.object({ type: z.literal('text'), text: z.string() })).transform((parts) => parts.map((p) => p.text).join('')),
]);

/** Candela's sampling fields with OpenAI's defaults and limits where they differ. */
const Common = {
  ...SamplingFields,
  model: z.string().min(1).optional(),
  max_tokens: SamplingFields.max_tokens.unwrap().optional(),
  temperature: SamplingFields.temperature.unwrap().default(1),
  stop: z.union([z.string().min(1), z.array(z.string().min(1)).max(4)]).nullish().transform((v) => v ?? undefined),
  n: z.literal(1, 'only n = 1 is supported').default(1),
  stream: z.boolean().default(false),
  stream_options: z.object({ include_usage: z.boolean().default(false) }).nullish(),
  user: z.string().optional(),
};

export const ChatBody = z.object({
  ...Common,
  messages: z.array(z.object({ role: z.enum(['system', 'user', 'assistant', 'tool', 'developer']), content: Content })).min(1),
  max_completion_tokens: z.number().int().min(1).max(32_768).optional(),
});

export const CompletionBody = z.object({
  ...Common,
  prompt: z.string().min(1, 'must not be empty'),
  echo: z.literal(false, 'echo is not supported').optional(),
});

type Kind = 'chat' | 'text';

/** OpenAI's finish reasons: `stop`/`length` map directly; a wall-clock cut is a truncation, `length`. */
function finishReason(r: GenerationResult): string {
  return r.finishReason === 'length' || r.finishReason === TIME_LIMIT ? 'length' : 'stop';
}

export function createOpenAiRoutes(models: ModelService, inference: InferenceService, options: { heartbeatMs: number }): Router {
  const r = Router();

  const run = async (req: Request, res: Response, kind: Kind, gen: Generation, model: string, stream: boolean, includeUsage: boolean, ac: AbortController) => {
    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${requestIdOf(res)}`;
    const created = Math.floor(Date.now() / 1000);
    const object = kind === 'chat' ? 'chat.completion' : 'text_completion';
    if (!stream) {
      const result = await gen.collect();
      if (result.finishReason === 'cancelled') return;
      const choice =
        kind === 'chat'
          ? { index: 0, message: { role: 'assistant', content: result.text }, logprobs: null, finish_reason: finishReason(result) }
          : { index: 0, text: result.text, logprobs: null, finish_reason: finishReason(result) };
      res.json({ id, object, created, model, choices: [choice], usage: usageJson(result) });
      return;
    }
    const sse = openSse(req, res, options);
    sse.signal.addEventListener('abort', () => ac.abort(), { once: true });
    const chunkObject = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
    const chunk = (delta: string | undefined, finish: string | null, first = false) => ({
      id,
      object: chunkObject,
      created,
      model,
      choices: [
        kind === 'chat'
          ? { index: 0, delta: first ? { role: 'assistant', content: '' } : delta === undefined ? {} : { content: delta }, logprobs: null, finish_reason: finish }
          : { index: 0, text: delta ?? '', logprobs: null, finish_reason: finish },
      ],
      ...(includeUsage ? { usage: null } : {}),
    });
    try {
      if (kind === 'chat') sse.send(undefined, chunk(undefined, null, true));
      for await (const c of gen) if (!sse.send(undefined, chunk(c.text, null))) await sse.drain();
      const result = await gen.result;
      if (result.finishReason !== 'cancelled') {
        sse.send(undefined, chunk(undefined, finishReason(result)));
        if (includeUsage) sse.send(undefined, { id, object: chunkObject, created, model, choices: [], usage: usageJson(result) });
      }
    } catch (err) {
      sse.send(undefined, toHttpError(err).toJSON());
    } finally {
      sse.sendRaw('[DONE]');
      sse.close();
    }
  };

  r.post('/v1/chat/completions', async (req, res) => {
    const body = validate(ChatBody, req.body);
    const model = modelFor(models, 'llm', body.model);
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? 512;
    const messages = body.messages.map((m) => ({ role: m.role === 'developer' ? 'system' : m.role, content: m.content }));
    const ac = new AbortController();
    if (!body.stream) clientGone(res).addEventListener('abort', () => ac.abort(), { once: true });
    const input: GenerateInput = { messages };
    const gen = await inference.generate(model, input, { params: samplingParams({ ...body, max_tokens: maxTokens }), signal: ac.signal }, contextOf(res));
    await run(req, res, 'chat', gen, model, body.stream, body.stream_options?.include_usage ?? false, ac);
  });

  r.post('/v1/completions', async (req, res) => {
    const body = validate(CompletionBody, req.body);
    const model = modelFor(models, 'llm', body.model);
    const ac = new AbortController();
    if (!body.stream) clientGone(res).addEventListener('abort', () => ac.abort(), { once: true });
    // OpenAI's default for completions is 16 tokens.
    const gen = await inference.generate(model, { prompt: body.prompt }, { params: samplingParams({ ...body, max_tokens: body.max_tokens ?? 16 }), signal: ac.signal }, contextOf(res));
    await run(req, res, 'text', gen, model, body.stream, body.stream_options?.include_usage ?? false, ac);
  });
  return r;
}
