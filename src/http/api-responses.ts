/**
 * The response side of the OpenAPI document: the one error body every
 * failure carries, the headers that come with it, and which statuses a
 * route can answer with given how it is guarded (auth, limits) and whether
 * it reads a body. Kept beside api-spec.ts so the operation table stays a
 * table.
 */

/** OpenAI's error `type`s, as {@link HttpError.type} derives them from the status. */
const ERROR_TYPES = ['invalid_request_error', 'authentication_error', 'rate_limit_error', 'server_error'];

/** `components.schemas`: the error body of every non-2xx answer (see errors.ts and the error handler in app.ts). */
export const ERROR_SCHEMAS = {
  Error: {
    type: 'object',
    description: "Every error answer: OpenAI's shape plus the request id (also sent as X-Request-ID).",
    properties: {
      error: {
        type: 'object',
        properties: {
          message: { type: 'string', description: 'What went wrong, for a person.' },
          type: { type: 'string', enum: ERROR_TYPES },
          code: { type: 'string', description: 'Stable machine-readable code, e.g. invalid_request, context_overflow, rate_limited.' },
          param: { type: ['string', 'null'], description: 'The offending parameter (dotted path), when there is one.' },
        },
        required: ['message', 'type', 'code', 'param'],
      },
      request_id: { type: 'string' },
    },
    required: ['error', 'request_id'],
  },
};

const SECONDS = { type: 'string', pattern: '^[0-9]+$' };

/** `components.headers`. */
export const HEADERS = {
  'X-Request-ID': { description: "The request's id: the client's X-Request-ID when it is sane (1-128 of [A-Za-z0-9_.:@/-]), a UUID otherwise.", required: true, schema: { type: 'string' } },
  'Retry-After': { description: 'Seconds to wait before trying again.', required: true, schema: SECONDS },
  'Retry-After-Optional': { description: 'Seconds to wait before trying again, when the server can tell.', required: false, schema: SECONDS },
  'WWW-Authenticate': { description: 'Bearer challenge (RFC 6750).', required: true, schema: { type: 'string' } },
  'RateLimit-Limit': { description: "The client's request budget per minute (when rate limits are on).", required: false, schema: SECONDS },
  'RateLimit-Remaining': { description: 'Requests left in this window (when rate limits are on).', required: false, schema: SECONDS },
  'RateLimit-Reset': { description: 'Seconds until the window resets (when rate limits are on).', required: false, schema: SECONDS },
};

const ref = (kind: 'headers' | 'schemas', name: string) => ({ $ref: `#/components/${kind}/${name}` });
const REQUEST_ID = { 'X-Request-ID': ref('headers', 'X-Request-ID') };
const LIMIT_HEADERS = { 'RateLimit-Limit': ref('headers', 'RateLimit-Limit'), 'RateLimit-Remaining': ref('headers', 'RateLimit-Remaining'), 'RateLimit-Reset': ref('headers', 'RateLimit-Reset') };

/** What each error status means on this server (the description of its response). */
const MEANING: Record<number, string> = {
  400: 'Malformed request: the body is not JSON or not UTF-8, a multipart upload is malformed, or a path segment is not valid percent-encoding.',
  401: 'No API key, or one that is unknown, malformed or revoked (auth is on).',
  403: "The API key lacks this route's scope.",
  404: 'Not found: the model, document, key or feature (key store, cache) named does not exist here.',
  408: 'The request body did not arrive within the body-read timeout; the connection is closed.',
  409: 'Conflict: a document with this id already exists.',
  413: 'Too large: the body exceeds the body limit, or a list exceeds its documented maxItems.',
  415: 'Unsupported media type: the body must be application/json (uploads: multipart/form-data with .txt/.md files).',
  422: "The body violates this schema (code invalid_request), or the model cannot serve a valid one: context_overflow (prompt plus max_tokens exceeds the model's window), invalid_input (an input longer than the model takes without truncate, a token id outside the vocabulary), wrong_model_role, invalid_dimensions.",
  429: 'Too many requests: a rate limit, the per-client concurrency cap, or a full engine queue. Retry after Retry-After seconds.',
  503: 'Unavailable for now: a model not loaded or failed, documents without a ready embedder, the spend budget exhausted, or a store (keys, limits, cache) unreachable.',
};

/** The documented response for an error status. */
export function errorResponse(status: number): Record<string, unknown> {
  const headers: Record<string, unknown> = { ...REQUEST_ID };
  if (status === 401) headers['WWW-Authenticate'] = ref('headers', 'WWW-Authenticate');
  if (status === 429) Object.assign(headers, { 'Retry-After': ref('headers', 'Retry-After') }, LIMIT_HEADERS);
  if (status === 503) headers['Retry-After'] = ref('headers', 'Retry-After-Optional');
  return { description: MEANING[status] ?? 'error', headers, content: { 'application/json': { schema: ref('schemas', 'Error') } } };
}

/** How a route answers successfully. */
export type SuccessKind = 'json' | 'sse' | 'json-or-sse' | 'prometheus';

/** One server-sent event as its fields (what an SSE client parses): `event` and `data`. */
const CANDELA_EVENTS = {
  schema: {
    type: 'object',
    properties: { event: { type: 'string', enum: ['meta', 'token', 'done', 'error'] }, data: { type: 'string', contentMediaType: 'application/json' } },
    required: ['event', 'data'],
  },
  description: 'Server-sent events: `meta`, then `token`…, then `done` or `error`; each data is one JSON object.',
};
const OPENAI_EVENTS = {
  schema: {
    type: 'object',
    properties: { event: { type: 'string', const: 'message' }, data: { type: 'string' } },
    required: ['data'],
  },
  description: "Server-sent events, OpenAI's: unnamed `data:` chunks (JSON), then `data: [DONE]`.",
};

/** The documented success response. */
export function successResponse(kind: SuccessKind, description: string, limited: boolean, schema: Record<string, unknown> = {}): Record<string, unknown> {
  const content =
    kind === 'sse'
      ? { 'text/event-stream': CANDELA_EVENTS }
      : kind === 'json-or-sse'
        ? { 'application/json': { schema }, 'text/event-stream': OPENAI_EVENTS }
        : kind === 'prometheus'
          ? { 'text/plain': { schema: { type: 'string' }, description: 'Prometheus text exposition format, version 0.0.4.' } }
          : { 'application/json': { schema } };
  return { description, headers: limited ? { ...REQUEST_ID, ...LIMIT_HEADERS } : REQUEST_ID, content };
}

/** How a route is guarded on this server, as the middleware chain in app.ts applies it. */
export interface Guards {
  /** Auth applies to this route (auth on, and the route needs a scope). */
  auth: boolean;
  /** Rate limits or the per-client concurrency cap apply to this route. */
  limited: boolean;
  /** The route reads a request body. */
  body: boolean;
}

/** The error statuses a route can answer with: the middleware's, then the route's own. */
export function errorStatuses(guards: Guards, own: readonly number[]): number[] {
  const s = new Set<number>(own);
  if (guards.auth) [401, 403, 503].forEach((x) => s.add(x));
  if (guards.limited) [429, 503].forEach((x) => s.add(x));
  if (guards.body) [400, 408, 413, 415, 422].forEach((x) => s.add(x));
  return [...s].sort((a, b) => a - b);
}
