/**
 * The OpenAPI document, generated from the same zod schemas that validate
 * requests (zod's JSON Schema output), so the docs cannot drift from what
 * the server accepts.
 */
import { z } from 'zod';
import { requiredScope } from './access.ts';
import { CreateKeyBody } from './routes/admin.ts';
import { AddDocumentsBody } from './routes/documents.ts';
import { OpenAiBody, TeiBody } from './routes/embeddings.ts';
import { GenerateBody } from './routes/generate.ts';
import { ChatBody, CompletionBody } from './routes/openai.ts';
import { BatchBody, QueryBody } from './routes/query.ts';
import { RerankBody } from './routes/rerank.ts';
import { DetokenizeBody, TokenizeBody } from './routes/tokenize.ts';

/** One documented operation. */
export interface ApiOperation {
  method: 'get' | 'post' | 'delete';
  /** Express-style path (`/v1/models/:id`). */
  path: string;
  summary: string;
  tag: string;
  body?: z.ZodType;
  /** Responds with text/event-stream. */
  stream?: boolean;
}

/** Every route the server serves. */
export const API_OPERATIONS: readonly ApiOperation[] = [
  { method: 'get', path: '/health', summary: 'Liveness: 200 while the process and its event loop are alive', tag: 'probes' },
  { method: 'get', path: '/health/live', summary: 'Liveness (same as /health)', tag: 'probes' },
  { method: 'get', path: '/health/ready', summary: 'Readiness: 503 with per-model status until every configured model is ready', tag: 'probes' },
  { method: 'get', path: '/health/gpu', summary: 'Device and memory figures (on CPU: says so, reports process memory)', tag: 'probes' },
  { method: 'get', path: '/health/stats', summary: 'Uptime, models with scheduler counters, settings', tag: 'probes' },
  { method: 'get', path: '/metrics', summary: 'Prometheus metrics', tag: 'probes' },
  { method: 'get', path: '/v1/models', summary: 'Models (OpenAI list shape with Candela details)', tag: 'models' },
  { method: 'get', path: '/v1/models/:id', summary: 'One model', tag: 'models' },
  { method: 'post', path: '/v1/models/:id/load', summary: 'Load a configured model', tag: 'models' },
  { method: 'post', path: '/v1/models/:id/unload', summary: 'Unload a model (in-flight work finishes)', tag: 'models' },
  { method: 'post', path: '/v1/tokenize', summary: 'Token ids of text (single or batch)', tag: 'tokens', body: TokenizeBody },
  { method: 'post', path: '/v1/detokenize', summary: 'Text of token ids (single or batch)', tag: 'tokens', body: DetokenizeBody },
  { method: 'post', path: '/v1/embed', summary: 'Embeddings, TEI shape', tag: 'embeddings', body: TeiBody },
  { method: 'post', path: '/v1/embeddings', summary: 'Embeddings, OpenAI shape', tag: 'embeddings', body: OpenAiBody },
  { method: 'post', path: '/v1/rerank', summary: 'Rerank documents for a query (Cohere/Jina shape)', tag: 'rerank', body: RerankBody },
  { method: 'post', path: '/v1/documents', summary: 'Add documents (chunked, embedded, stored durably; 201 once in the store of record: disk, or Redis)', tag: 'documents', body: AddDocumentsBody },
  { method: 'get', path: '/v1/documents', summary: 'List documents and the corpus version', tag: 'documents' },
  { method: 'get', path: '/v1/documents/:id', summary: 'One document with its chunks', tag: 'documents' },
  { method: 'delete', path: '/v1/documents/:id', summary: 'Delete a document', tag: 'documents' },
  { method: 'post', path: '/v1/query', summary: 'Answer a question from the documents (retrieve, rerank, generate)', tag: 'rag', body: QueryBody },
  { method: 'post', path: '/v1/query/stream', summary: 'RAG answer streamed as SSE: meta, token…, done | error', tag: 'rag', body: QueryBody, stream: true },
  { method: 'post', path: '/v1/batch', summary: 'Up to 50 queries, run concurrently; results in order, errors per item', tag: 'rag', body: BatchBody },
  { method: 'post', path: '/v1/generate', summary: 'Generate text from a prompt or messages', tag: 'generation', body: GenerateBody },
  { method: 'post', path: '/v1/generate/stream', summary: 'Generate, streamed as SSE: meta, token…, done | error', tag: 'generation', body: GenerateBody, stream: true },
  { method: 'post', path: '/v1/chat/completions', summary: 'OpenAI chat completions (stream or not)', tag: 'openai', body: ChatBody },
  { method: 'post', path: '/v1/completions', summary: 'OpenAI completions (stream or not)', tag: 'openai', body: CompletionBody },
  { method: 'get', path: '/v1/keys', summary: 'List API keys (never the keys themselves)', tag: 'admin' },
  { method: 'post', path: '/v1/keys', summary: 'Create an API key; the key is shown in this answer only', tag: 'admin', body: CreateKeyBody },
  { method: 'delete', path: '/v1/keys/:id', summary: 'Revoke an API key (effective at once)', tag: 'admin' },
  { method: 'get', path: '/v1/cache', summary: 'Semantic cache: backend, entries, threshold, TTL, store state', tag: 'admin' },
  { method: 'delete', path: '/v1/cache', summary: 'Flush the semantic cache (every replica)', tag: 'admin' },
];

const ErrorBody = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { message: { type: 'string' }, type: { type: 'string' }, code: { type: 'string' }, param: { type: ['string', 'null'] } },
      required: ['message', 'type', 'code', 'param'],
    },
    request_id: { type: 'string' },
  },
};

/** Builds the OpenAPI 3.1 document. */
export function buildOpenApi(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of API_OPERATIONS) {
    const params = [...op.path.matchAll(/:(\w+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const path = op.path.replace(/:(\w+)/g, '{$1}');
    // With auth on, every route but the probes needs a key with this scope.
    const scope = requiredScope(op.method.toUpperCase(), op.path, { metricsAuth: true });
    const errors = Object.fromEntries(
      [...(op.body ? ['400', '404', '413', '415', '422', '429', '503'] : ['404', '429', '503']), ...(scope ? ['401', '403'] : [])].map((s) => [s, { description: 'error', content: { 'application/json': { schema: ErrorBody } } }]),
    );
    paths[path] ??= {};
    paths[path][op.method] = {
      summary: scope ? `${op.summary} [scope: ${scope}]` : op.summary,
      tags: [op.tag],
      security: scope ? [{ apiKey: [] }] : [],
      parameters: [{ name: 'X-Request-ID', in: 'header', required: false, schema: { type: 'string' } }, ...params],
      ...(op.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: z.toJSONSchema(op.body, { io: 'input', unrepresentable: 'any' }) } } } }
        : {}),
      responses: {
        '200': { description: 'success', content: op.stream ? { 'text/event-stream': {} } : { 'application/json': {} } },
        ...errors,
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Candela', version, description: 'Self-hosted LLM and RAG inference server' },
    components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'API key (when the server runs with CANDELA_AUTH=true)' } } },
    paths,
  };
}
