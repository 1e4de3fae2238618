/** The shapes of the API answers the page reads (see /openapi.json and the README). */

/** One entry of GET /v1/models. */
export interface ModelEntry {
  id: string;
  role: 'llm' | 'embedder' | 'reranker';
  status: string;
  failure: string | null;
  architecture: string | null;
  quantization: string | null;
  parameters: number | null;
  context_length: number | null;
  dimensions: number | null;
  device: string | null;
  memory_bytes: number | null;
  disk_bytes: number;
  load_ms: number | null;
}

/** GET /health/ready. */
export interface Readiness {
  status: 'ready' | 'not_ready';
  models: { name: string; status: string }[];
  components: Record<string, string>;
}

/** GET /health/stats (the parts the page shows). */
export interface ServerStats {
  uptime_s: number;
  models: { name: string; role: string; status: string; scheduler?: { running: number; waiting: number; generatedTokens?: number } }[];
  settings: Record<string, unknown>;
  cache?: { enabled?: boolean; backend?: string; entries?: number; threshold?: number; ttl_s?: number; store_state?: string };
  breaker?: { enabled: boolean; state: string; spent: number; budget: number; window_s: number; retry_after_s: number; rejections: number };
  memory?: { process_rss_bytes: number };
}

/** One entry of GET /v1/documents. */
export interface DocumentEntry {
  id: string;
  title: string;
  created_at: string;
  chunks: number;
  characters: number;
}

/** GET /v1/documents. */
export interface DocumentList {
  data: DocumentEntry[];
  corpus_version: string;
}

/** A source of a RAG answer, as the stream's `meta` event lists it (text with include_sources). */
export interface Source {
  id: string;
  title: string;
  score: number;
  /** Positions in the document of the retrieved chunks this source joins. */
  chunks?: number[];
  text?: string;
}

/** How a cached answer was found. */
export interface CacheInfo {
  kind: 'exact' | 'semantic';
  score: number;
  matched_query: string;
  created_at: string;
}

/** The `meta` event of /v1/query/stream. */
export interface QueryMeta {
  request_id: string;
  model: string;
  k: number;
  reranked: boolean;
  sources: Source[];
  cache_hit: boolean;
}

/** The server's stage timings of an answer, in milliseconds. */
export interface ServerTimings {
  retrieval_ms: number;
  rerank_ms: number;
  ttft_ms: number;
  generation_ms: number;
  total_ms: number;
}

/** The `done` event of /v1/query/stream. */
export interface QueryDone {
  request_id: string;
  model_id: string;
  timings: ServerTimings;
  token_count: number;
  tokens_per_sec: number | null;
  finish_reason: string;
  cache_hit: boolean;
  cache?: CacheInfo;
}
