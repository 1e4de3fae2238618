/**
 * The OpenAPI document, generated from the same zod schemas that validate
 * requests (zod's JSON Schema output), so the docs cannot drift from what
 * the server accepts.
 */
import { z } from 'zod';
import { PROBE_PATHS, requiredScope } from './access.ts';
import { ERROR_SCHEMAS, HEADERS, errorResponse, errorStatuses, successResponse, type SuccessKind } from './api-responses.ts';
import { SUCCESS_SCHEMAS } from './api-success.ts';
import { CreateKeyBody } from './routes/admin.ts';
import { AddDocumentsBody } from './routes/documents.ts';
import { OpenAiBody, TeiBody } from './routes/embeddings.ts';
import { GenerateBody } from './routes/generate.ts';
import { ChatBody, CompletionBody } from './routes/openai.ts';
import { BatchBody, QueryBody } from './routes/query.ts';
import { RerankBody } from './routes/rerank.ts';
import { SearchBody } from './routes/search.ts';
import { DetokenizeBody, TokenizeBody } from './routes/tokenize.ts';

/** One documented operation. */
export interface ApiOperation {
  method: 'get' | 'post' | 'delete';
  /** Express-style path (`/v1/models/:id`). */
  path: string;
  summary: string;
  tag: string;
  body?: z.ZodType;
  /** The body may also be a multipart/form-data upload of .txt/.md files. */
  upload?: boolean;
  /** How it answers (default: JSON). */
  success?: SuccessKind;
  /** Success status (default 200). */
  status?: 200 | 201;
  /** Error statuses the route itself can answer with (the middleware's are added: see {@link errorStatuses}). */
  errors?: readonly number[];
  /** Error statuses whose body is the success body (readiness answers 503 with its report). */
  sameBodyOn?: readonly number[];
  /** OpenAPI links from the success answer: operation (by path `METHOD path`) → its `id` parameter as a runtime expression. */
  links?: Readonly<Record<string, string>>;
}

/** Statuses of every route that runs a model: unknown model, a request the model cannot serve, a full queue, a model not ready. */
const MODEL = [404, 422, 429, 503] as const;

/** Every route the server serves. */
export const API_OPERATIONS: readonly ApiOperation[] = [
  { method: 'get', path: '/health', summary: 'Liveness: 200 while the process and its event loop are alive', tag: 'probes' },
  { method: 'get', path: '/health/live', summary: 'Liveness (same as /health)', tag: 'probes' },
  { method: 'get', path: '/health/ready', summary: 'Readiness: 503 with per-model status until every configured model is ready', tag: 'probes', sameBodyOn: [503] },
  { method: 'get', path: '/health/gpu', summary: 'Device and memory figures (on CPU: says so, reports process memory)', tag: 'probes' },
  { method: 'get', path: '/health/stats', summary: 'Uptime, models with scheduler counters, settings', tag: 'probes' },
  { method: 'get', path: '/metrics', summary: 'Prometheus metrics', tag: 'probes', success: 'prometheus' },
  { method: 'get', path: '/v1/models', summary: 'Models (OpenAI list shape with Candela details)', tag: 'models' },
  { method: 'get', path: '/v1/models/:id', summary: 'One model', tag: 'models', errors: [404] },
  { method: 'post', path: '/v1/models/:id/load', summary: 'Load a configured model', tag: 'models', errors: [404, 503] },
  { method: 'post', path: '/v1/models/:id/unload', summary: 'Unload a model (in-flight work finishes)', tag: 'models', errors: [404] },
  { method: 'post', path: '/v1/tokenize', summary: 'Token ids of text (single or batch)', tag: 'tokens', body: TokenizeBody, errors: MODEL },
  { method: 'post', path: '/v1/detokenize', summary: 'Text of token ids (single or batch)', tag: 'tokens', body: DetokenizeBody, errors: MODEL },
  { method: 'post', path: '/v1/embed', summary: 'Embeddings, TEI shape', tag: 'embeddings', body: TeiBody, errors: MODEL },
  { method: 'post', path: '/v1/embeddings', summary: 'Embeddings, OpenAI shape', tag: 'embeddings', body: OpenAiBody, errors: MODEL },
  { method: 'post', path: '/v1/rerank', summary: 'Rerank documents for a query (Cohere/Jina shape)', tag: 'rerank', body: RerankBody, errors: MODEL },
  { method: 'post', path: '/v1/documents', summary: 'Add documents (chunked, embedded, stored durably; 201 once in the store of record: disk, or Redis)', tag: 'documents', body: AddDocumentsBody, upload: true, status: 201, errors: [409, ...MODEL], links: { 'get /v1/documents/:id': '$response.body#/data/0/id', 'delete /v1/documents/:id': '$response.body#/data/0/id' } },
  { method: 'get', path: '/v1/documents', summary: 'List documents and the corpus version', tag: 'documents', errors: [503] },
  { method: 'get', path: '/v1/documents/:id', summary: 'One document with its chunks', tag: 'documents', errors: [404, 503] },
  { method: 'delete', path: '/v1/documents/:id', summary: 'Delete a document', tag: 'documents', errors: [404, 503] },
  { method: 'post', path: '/v1/search', summary: 'Ranked chunks for a query (dense or hybrid BM25 + dense, optional rerank) with scores and stage timings; no generation', tag: 'rag', body: SearchBody, errors: [400, 404, 429, 503] },
  { method: 'post', path: '/v1/query', summary: 'Answer a question from the documents (retrieve, rerank, generate)', tag: 'rag', body: QueryBody, errors: MODEL },
  { method: 'post', path: '/v1/query/stream', summary: 'RAG answer streamed as SSE: meta, token…, done | error', tag: 'rag', body: QueryBody, success: 'sse', errors: MODEL },
  { method: 'post', path: '/v1/batch', summary: 'Up to 50 queries, run concurrently; results in order, errors per item', tag: 'rag', body: BatchBody },
  { method: 'post', path: '/v1/generate', summary: 'Generate text from a prompt or messages', tag: 'generation', body: GenerateBody, errors: MODEL },
  { method: 'post', path: '/v1/generate/stream', summary: 'Generate, streamed as SSE: meta, token…, done | error', tag: 'generation', body: GenerateBody, success: 'sse', errors: MODEL },
  { method: 'post', path: '/v1/chat/completions', summary: 'OpenAI chat completions (stream or not)', tag: 'openai', body: ChatBody, success: 'json-or-sse', errors: MODEL },
  { method: 'post', path: '/v1/completions', summary: 'OpenAI completions (stream or not)', tag: 'openai', body: CompletionBody, success: 'json-or-sse', errors: MODEL },
  { method: 'get', path: '/v1/keys', summary: 'List API keys (never the keys themselves)', tag: 'admin', errors: [404] },
  { method: 'post', path: '/v1/keys', summary: 'Create an API key; the key is shown in this answer only', tag: 'admin', body: CreateKeyBody, status: 201, errors: [404], links: { 'delete /v1/keys/:id': '$response.body#/id' } },
  { method: 'delete', path: '/v1/keys/:id', summary: 'Revoke an API key (effective at once)', tag: 'admin', errors: [404] },
  { method: 'get', path: '/v1/cache', summary: 'Semantic cache: backend, entries, threshold, TTL, store state', tag: 'admin', errors: [404] },
  { method: 'delete', path: '/v1/cache', summary: 'Flush the semantic cache (every replica)', tag: 'admin', errors: [404, 503] },
];

/** How the server is set up, where that changes the contract. */
export interface ApiSpecOptions {
  /** API keys are required (CANDELA_AUTH): the security schemes, 401/403 appear. */
  auth: boolean;
  /** With auth on, /metrics needs a key too. */
  metricsAuth: boolean;
  /** Rate limits or a per-client concurrency cap are on: 429 on every limited route. */
  limited: boolean;
}

const MULTIPART = {
  schema: {
    type: 'object',
    description: 'One document per file: .txt or .md, UTF-8; the title is the file name.',
    properties: { file: { type: 'array', items: { type: 'string', contentMediaType: 'text/plain' } } },
  },
};

/** Request-body schemas: zod's JSON Schema of what the validator takes, unknown properties declared as accepted. */
function bodySchema(body: z.ZodType): Record<string, unknown> {
  const schema = z.toJSONSchema(body, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete schema['$schema'];
  return openObjects(schema) as Record<string, unknown>;
}

/**
 * Marks every object schema `additionalProperties: true`: the validator
 * (zod's default objects) accepts unknown properties everywhere and ignores
 * them, as vLLM, TEI and llama.cpp's server do; the document says so.
 */
function openObjects(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(openObjects);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([p, s]) => [p, openObjects(s)])) : openObjects(v);
  if (out['type'] === 'object' && out['additionalProperties'] === undefined) out['additionalProperties'] = true;
  return out;
}

/** Builds the OpenAPI 3.1 document for a server set up as `options` says. */
export function buildOpenApi(version: string, options: ApiSpecOptions = { auth: false, metricsAuth: false, limited: false }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of API_OPERATIONS) {
    const names = [...op.path.matchAll(/:(\w+)/g)].map((m) => m[1] ?? '');
    const params = names.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } }));
    const path = op.path.replace(/:(\w+)/g, '{$1}');
    const scope = options.auth ? requiredScope(op.method.toUpperCase(), op.path, { metricsAuth: options.metricsAuth }) : null;
    const limited = options.limited && !PROBE_PATHS.includes(op.path) && op.path !== '/metrics';
    // A path segment that is not valid percent-encoding is a 400.
    const own = names.length > 0 ? [400, ...(op.errors ?? [])] : (op.errors ?? []);
    const statuses = errorStatuses({ auth: scope !== null, limited, body: op.body !== undefined }, own);
    const schema = SUCCESS_SCHEMAS[`${op.method.toUpperCase()} ${op.path}`] ?? {};
    const content: Record<string, unknown> = {};
    if (op.body) content['application/json'] = { schema: bodySchema(op.body) };
    if (op.upload) content['multipart/form-data'] = MULTIPART;
    paths[path] ??= {};
    paths[path][op.method] = {
      operationId: operationId(op),
      summary: op.summary,
      ...(scope ? { description: `Needs an API key with the \`${scope}\` scope.` } : {}),
      tags: [op.tag],
      ...(scope ? { security: [{ bearer: [scope] }, { apiKey: [scope] }] } : {}),
      parameters: [{ name: 'X-Request-ID', in: 'header', required: false, description: 'Your id for this request (echoed back when sane).', schema: { type: 'string' } }, ...params],
      ...(op.body ? { requestBody: { required: true, content } } : {}),
      responses: {
        [String(op.status ?? 200)]: { ...successResponse(op.success ?? 'json', op.status === 201 ? 'created' : 'success', limited, schema), ...linksOf(op) },
        ...Object.fromEntries(statuses.map((s) => [String(s), errorResponse(s)])),
        ...Object.fromEntries((op.sameBodyOn ?? []).map((s) => [String(s), successResponse('json', 'the same report, not ready yet', false, schema)])),
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Candela',
      version,
      description:
        'Self-hosted LLM and RAG inference server. Request bodies accept unknown properties and ignore them (every object schema says `additionalProperties: true`). ' +
        (options.auth ? 'API keys are required: `Authorization: Bearer <key>` or `X-API-Key: <key>`; each operation names the scope its key needs.' : 'This server runs without API keys.'),
    },
    components: {
      schemas: ERROR_SCHEMAS,
      headers: HEADERS,
      ...(options.auth
        ? {
            securitySchemes: {
              bearer: { type: 'http', scheme: 'bearer', description: 'An API key as a bearer token.' },
              apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'An API key in the X-API-Key header.' },
            },
          }
        : {}),
    },
    paths,
  };
}

/** `POST /v1/models/:id/load` → `post_v1_models_id_load`. */
function operationId(op: Pick<ApiOperation, 'method' | 'path'>): string {
  return `${op.method}_${op.path.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_+|_+$/g, '')}`;
}

/** The success answer's links (what a client, or a stateful fuzzer, can do next with what it created). */
function linksOf(op: ApiOperation): Record<string, unknown> {
  if (!op.links) return {};
  const links = Object.entries(op.links).map(([target, id]) => {
    const [method = '', path = ''] = target.split(' ');
    const operationId_ = operationId({ method: method as ApiOperation['method'], path });
    return [operationId_, { operationId: operationId_, parameters: { id } }];
  });
  return { links: Object.fromEntries(links) };
}
