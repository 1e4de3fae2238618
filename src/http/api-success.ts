/**
 * What each route answers on success, as JSON Schema, for the OpenAPI
 * document. The shapes are written out here (the routes build plain
 * objects), and the contract fuzz validates every answer it gets against
 * them, so a route that changes its answer without this file fails the
 * tests. Objects list the fields a client can rely on as `required`; more
 * may be added later (no `additionalProperties: false` on answers).
 */

type Schema = Record<string, unknown>;

const str: Schema = { type: 'string' };
const int: Schema = { type: 'integer' };
const num: Schema = { type: 'number' };
const bool: Schema = { type: 'boolean' };
const nullable = (s: Schema): Schema => ({ ...s, type: [s['type'] as string, 'null'] });
const obj = (properties: Record<string, Schema>, required: string[] = Object.keys(properties)): Schema => ({ type: 'object', properties, required });
const list = (items: Schema): Schema => ({ type: 'array', items });
const listOf = (item: Schema, extra: Record<string, Schema> = {}): Schema => obj({ object: { const: 'list' }, data: list(item), ...extra });

const ROLE: Schema = { type: 'string', enum: ['llm', 'embedder', 'reranker'] };
const FINISH: Schema = { type: 'string', description: 'stop, length, time_limit (the wall-clock limit cut it), cancelled or error' };

const USAGE = obj({ prompt_tokens: int, completion_tokens: int, total_tokens: int, prompt_tokens_details: obj({ cached_tokens: int }) });

const MODEL = obj(
  {
    id: str,
    object: { const: 'model' },
    created: int,
    owned_by: str,
    role: ROLE,
    status: str,
    failure: nullable(str),
    architecture: nullable(str),
    quantization: nullable(str),
    parameters: nullable(num),
    context_length: nullable(int),
    dimensions: nullable(int),
    device: nullable(str),
    memory_bytes: nullable(num),
    disk_bytes: num,
    load_ms: nullable(num),
  },
  ['id', 'object', 'created', 'owned_by', 'role', 'status'],
);

const READINESS = obj({
  status: { type: 'string', enum: ['ready', 'not_ready'] },
  models: list(obj({ name: str, role: ROLE, status: str, failure: nullable(str) })),
  components: { type: 'object', additionalProperties: str },
});

const DOCUMENT_SUMMARY = obj({ id: str, title: str, created_at: str, chunks: int, characters: int }, ['id', 'created_at', 'chunks', 'characters']);

const SOURCE = obj({ id: str, title: str, score: num, chunks: list(int), text: str }, ['id', 'score']);
const CITATIONS = list({ type: 'object' });
const QUERY_ANSWER = obj(
  {
    answer: str,
    sources: list(SOURCE),
    citations: CITATIONS,
    reranked: bool,
    model: str,
    finish_reason: FINISH,
    usage: USAGE,
    timings: obj({ retrieval_ms: num, rerank_ms: num, ttft_ms: nullable(num), generation_ms: num, total_ms: num }),
    cache_hit: bool,
    cache: obj({ kind: str, score: num, matched_query: str, created_at: str }),
    request_id: str,
  },
  ['answer', 'sources', 'citations', 'reranked', 'model', 'finish_reason', 'usage', 'timings', 'cache_hit', 'request_id'],
);

const GENERATION = obj({
  request_id: str,
  model: str,
  text: str,
  finish_reason: FINISH,
  usage: USAGE,
  timings: obj({ queue_ms: nullable(num), ttft_ms: nullable(num), prefill_ms: nullable(num), decode_ms: nullable(num), total_ms: nullable(num) }, []),
  token_count: int,
  tokens_per_sec: nullable(num),
  seed: num,
});

const CHOICE_CHAT = obj({ index: int, message: obj({ role: { const: 'assistant' }, content: str }), logprobs: { type: 'null' }, finish_reason: str });
const CHOICE_TEXT = obj({ index: int, text: str, logprobs: { type: 'null' }, finish_reason: str });
const completion = (object: string, choice: Schema): Schema => obj({ id: str, object: { const: object }, created: int, model: str, choices: list(choice), usage: USAGE });

const KEY = obj({ id: str, name: str, tenant: str, scopes: list({ type: 'string', enum: ['read', 'write', 'admin'] }), created_at: str, revoked_at: nullable(str) });

const TOKENIZED: Schema = {
  oneOf: [obj({ model: str, tokens: list(int), count: int }), obj({ model: str, tokens: list(list(int)), counts: list(int) })],
};

/** Success bodies by `METHOD path` (express-style path), for JSON answers. */
export const SUCCESS_SCHEMAS: Readonly<Record<string, Schema>> = {
  'GET /health': obj({ status: { const: 'ok' } }),
  'GET /health/live': obj({ status: { const: 'ok' } }),
  'GET /health/ready': READINESS,
  'GET /health/gpu': obj(
    {
      device: str,
      gpu: bool,
      cuda_compiled: bool,
      message: str,
      device_memory_used_bytes: nullable(num),
      device_memory_total_bytes: nullable(num),
      process_rss_bytes: num,
      cpu_features: { type: 'array', items: str },
      cpu_kernels: obj({ isa: str, threads: int }),
    },
    ['device', 'gpu', 'cuda_compiled', 'process_rss_bytes', 'cpu_kernels'],
  ),
  'GET /health/stats': obj({ uptime_s: num, models: list(obj({ name: str, role: ROLE, status: str }, ['name', 'role', 'status'])), settings: { type: 'object' }, memory: obj({ process_rss_bytes: num }) }),
  'GET /v1/models': listOf(MODEL),
  'GET /v1/models/:id': MODEL,
  'POST /v1/models/:id/load': MODEL,
  'POST /v1/models/:id/unload': obj({ id: str, object: { const: 'model' }, status: { const: 'unloaded' } }),
  'POST /v1/tokenize': TOKENIZED,
  'POST /v1/detokenize': obj({ model: str, text: { anyOf: [str, list(str)] } }),
  'POST /v1/embed': list(list(num)),
  'POST /v1/embeddings': obj({
    object: { const: 'list' },
    model: str,
    data: list(obj({ object: { const: 'embedding' }, index: int, embedding: { anyOf: [list(num), { type: 'string', contentEncoding: 'base64' }] } })),
    usage: obj({ prompt_tokens: int, total_tokens: int }),
  }),
  'POST /v1/rerank': obj({
    id: str,
    model: str,
    results: list(obj({ index: int, relevance_score: num, document: obj({ text: str }) }, ['index', 'relevance_score'])),
    meta: { type: 'object' },
  }),
  'POST /v1/documents': listOf(DOCUMENT_SUMMARY, { corpus_version: str }),
  'GET /v1/documents': listOf(DOCUMENT_SUMMARY, { corpus_version: str }),
  'GET /v1/documents/:id': obj({ id: str, title: str, text: str, created_at: str, chunks: list(str) }, ['id', 'text', 'created_at', 'chunks']),
  'DELETE /v1/documents/:id': obj({ id: str, deleted: { const: true }, corpus_version: str }),
  'POST /v1/search': listOf(
    obj({
      rank: int,
      document_id: str,
      title: str,
      chunk_index: int,
      text: str,
      score: num,
      scores: obj({ dense: num, bm25: nullable(num), fused: nullable(num), rerank: nullable(num) }),
    }),
    {
      retrieval: { type: 'string', enum: ['dense', 'hybrid'] },
      reranked: bool,
      models: obj({ embedder: str, reranker: nullable(str) }),
      timings: obj({ embed_ms: num, dense_ms: num, bm25_ms: num, fuse_ms: num, rerank_ms: num, total_ms: num }),
      request_id: str,
    },
  ),
  'POST /v1/query': QUERY_ANSWER,
  'POST /v1/batch': listOf(
    {
      anyOf: [QUERY_ANSWER, obj({ error: { type: 'object', required: ['message', 'type', 'code', 'param'] }, status: int })],
    },
    { total_ms: num, request_id: str },
  ),
  'POST /v1/generate': GENERATION,
  'POST /v1/chat/completions': completion('chat.completion', CHOICE_CHAT),
  'POST /v1/completions': completion('text_completion', CHOICE_TEXT),
  'GET /v1/keys': listOf(KEY),
  'POST /v1/keys': { allOf: [KEY, obj({ key: str })] },
  'DELETE /v1/keys/:id': obj({ id: str, revoked: { const: true } }),
  'GET /v1/cache': obj({ backend: str, entries: int, threshold: num, ttl_s: num, store_state: str }),
  'DELETE /v1/cache': obj({ flushed: int }),
};
