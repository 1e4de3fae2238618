/**
 * The load tester's HTTP client (undici): one request, timed on the client.
 * The client's clock is the source of truth: TTFT is send → first token
 * event, ITL the gaps between token events, E2E send → last byte; the
 * server's own numbers are for correlation only. Streams are read as SSE in
 * Candela's shape (`event: token` … `done`/`error`) or OpenAI's (`data:`
 * chunks with `choices[0].text` or `.delta.content`, then `[DONE]`).
 */
import { Pool } from 'undici';

/** How a response body is read. */
export type BodyKind = 'json' | 'candela-sse' | 'openai-sse';

/** One request to send. */
export interface RequestSpec {
  method: 'GET' | 'POST' | 'DELETE';
  /** Path and query, starting with `/`. */
  path: string;
  body?: unknown;
  kind: BodyKind;
}

/** Why a request failed, by class: 429 and 503 apart from other 5xx. */
export type ErrorClass = 'rate_limited' | 'unavailable' | 'server_error' | 'client_error' | 'stream_error' | 'timeout' | 'network' | 'aborted';

/** One request as the client saw it. */
export interface Sample {
  /** Send time, ms since the run's start. */
  startMs: number;
  /** HTTP status; 0 when no response arrived. */
  status: number;
  /** null for a success. */
  error: ErrorClass | null;
  /** Short reason for a failure (status text, error code, exception message). */
  detail?: string;
  /** Send → first token event (streams only). */
  ttftMs: number | null;
  /** Gaps between consecutive token events (streams only). */
  itlMs: number[];
  /** Send → end of body. */
  e2eMs: number;
  /** Completion tokens: the server's usage where given, else token events. */
  outputTokens: number | null;
  /** Prompt tokens per the server's usage, where given. */
  promptTokens: number | null;
  /** The X-Cache response header (exact, semantic, miss), if any. */
  cache: string | null;
  /** The Retry-After response header, if any (a 429 or 503 should carry one). */
  retryAfter?: string | null;
}

/** TPOT = (E2E − TTFT) / (tokens − 1); null without a stream or with fewer than 2 tokens. */
export function tpotMs(s: Sample): number | null {
  if (s.ttftMs === null || s.outputTokens === null || s.outputTokens < 2) return null;
  return (s.e2eMs - s.ttftMs) / (s.outputTokens - 1);
}

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** Base URL: scheme, host, port and an optional path prefix. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer …`. */
  apiKey?: string;
  /** Per-request limit, headers and body together. */
  timeoutMs: number;
  /** Most connections kept open (at least the run's concurrency). */
  connections: number;
}

/** A client bound to one server. */
export interface LoadClient {
  /** Sends `spec`; never throws: failures come back as samples with an error class. */
  send(spec: RequestSpec, signal?: AbortSignal): Promise<Omit<Sample, 'startMs'> & { sentAt: number }>;
  /** GETs a path and returns its text (status checked); for /metrics and /health/stats. */
  getText(path: string): Promise<string>;
  close(): Promise<void>;
}

/** An error class from an HTTP status. */
export function classifyStatus(status: number): ErrorClass | null {
  if (status < 400) return null;
  if (status === 429) return 'rate_limited';
  if (status === 503) return 'unavailable';
  if (status >= 500) return 'server_error';
  return 'client_error';
}

interface Usage {
  completion_tokens?: number | null;
  prompt_tokens?: number | null;
}

/** Splits SSE text into events; returns the unfinished tail. */
export function splitSse(buf: string, onEvent: (event: string | undefined, data: string) => void): string {
  buf = buf.replace(/\r\n?/g, '\n');
  let at: number;
  while ((at = buf.indexOf('\n\n')) >= 0) {
    const block = buf.slice(0, at);
    buf = buf.slice(at + 2);
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (data.length) onEvent(event, data.join('\n'));
  }
  return buf;
}

/** What a stream's events said, folded as they arrive. */
interface StreamState {
  firstAt: number | null;
  lastAt: number | null;
  itl: number[];
  events: number;
  usageTokens: number | null;
  promptTokens: number | null;
  error: string | null;
}

function onToken(st: StreamState, now: number): void {
  if (st.firstAt === null) st.firstAt = now;
  else if (st.lastAt !== null) st.itl.push(now - st.lastAt);
  st.lastAt = now;
  st.events++;
}

function parseJson(data: string): Record<string, unknown> | null {
  try {
    const j: unknown = JSON.parse(data);
    return j && typeof j === 'object' ? (j as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Folds one Candela SSE event (`meta`, `token`, `done`, `error`). */
function candelaEvent(st: StreamState, event: string | undefined, data: string, now: number): void {
  if (event === 'token') onToken(st, now);
  else if (event === 'meta') {
    const j = parseJson(data);
    if (typeof j?.['prompt_tokens'] === 'number') st.promptTokens = j['prompt_tokens'];
  } else if (event === 'done') {
    const j = parseJson(data);
    if (typeof j?.['token_count'] === 'number') st.usageTokens = j['token_count'];
    const u = j?.['usage'] as Usage | undefined;
    if (typeof u?.prompt_tokens === 'number') st.promptTokens = u.prompt_tokens;
  } else if (event === 'error') {
    const j = parseJson(data);
    st.error = typeof j?.['code'] === 'string' ? j['code'] : 'error event';
  }
}

/** Folds one OpenAI SSE chunk (completions or chat completions). */
function openaiEvent(st: StreamState, data: string, now: number): void {
  if (data.trim() === '[DONE]') return;
  const j = parseJson(data);
  if (!j) return;
  if (j['error']) {
    const e = j['error'] as { code?: unknown; type?: unknown; message?: unknown };
    const first = [e.code, e.type, e.message].find((x) => typeof x === 'string' || typeof x === 'number');
    st.error = first === undefined ? 'error' : String(first);
    return;
  }
  const c = (j['choices'] as { text?: string; delta?: { content?: string | null; reasoning_content?: string | null } }[] | undefined)?.[0];
  const text = c?.text ?? c?.delta?.content ?? c?.delta?.reasoning_content;
  if (text) onToken(st, now);
  const u = j['usage'] as Usage | null | undefined;
  if (typeof u?.completion_tokens === 'number') st.usageTokens = u.completion_tokens;
  if (typeof u?.prompt_tokens === 'number') st.promptTokens = u.prompt_tokens;
}

/** Token counts from a JSON body: `usage`, or a `/v1/batch` list's usages summed. */
function jsonUsage(text: string): { output: number | null; prompt: number | null } {
  const j = parseJson(text);
  if (!j) return { output: null, prompt: null };
  const u = j['usage'] as Usage | undefined;
  if (u && typeof u.completion_tokens === 'number') return { output: u.completion_tokens, prompt: u.prompt_tokens ?? null };
  if (Array.isArray(j['data'])) {
    let out = 0;
    let prompt = 0;
    let any = false;
    for (const item of j['data'] as { usage?: Usage }[]) {
      if (typeof item?.usage?.completion_tokens === 'number') {
        any = true;
        out += item.usage.completion_tokens;
        prompt += item.usage.prompt_tokens ?? 0;
      }
    }
    if (any) return { output: out, prompt };
  }
  return { output: null, prompt: null };
}

function headerOf(headers: Record<string, string | string[] | undefined>, name: string): string | null {
  const v = headers[name];
  return v === undefined ? null : Array.isArray(v) ? (v[0] ?? null) : v;
}

/** A client for `options.baseUrl`, with a connection pool sized for the run. */
export function createClient(options: ClientOptions): LoadClient {
  const base = new URL(options.baseUrl);
  const prefix = base.pathname.replace(/\/+$/, '');
  const pool = new Pool(base.origin, { connections: options.connections, pipelining: 1, keepAliveTimeout: 30_000 });
  const headers: Record<string, string> = { accept: 'application/json, text/event-stream' };
  if (options.apiKey) headers['authorization'] = `Bearer ${options.apiKey}`;

  const send: LoadClient['send'] = async (spec, signal) => {
    const t0 = performance.now();
    const timeout = AbortSignal.timeout(options.timeoutMs);
    const all = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const st: StreamState = { firstAt: null, lastAt: null, itl: [], events: 0, usageTokens: null, promptTokens: null, error: null };
    let status = 0;
    let cache: string | null = null;
    let retryAfter: string | null = null;
    const done = (error: ErrorClass | null, detail?: string, output: number | null = null, prompt: number | null = null) => {
      const end = performance.now();
      const streaming = spec.kind !== 'json';
      return {
        sentAt: t0,
        status,
        error,
        ...(detail ? { detail } : {}),
        ttftMs: streaming && st.firstAt !== null ? st.firstAt - t0 : null,
        itlMs: st.itl,
        e2eMs: end - t0,
        outputTokens: streaming ? (st.usageTokens ?? (st.firstAt !== null ? st.events : null)) : output,
        promptTokens: streaming ? st.promptTokens : prompt,
        cache,
        retryAfter,
      };
    };
    try {
      const res = await pool.request({
        method: spec.method,
        path: prefix + spec.path,
        headers: spec.body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
        body: spec.body === undefined ? undefined : JSON.stringify(spec.body),
        signal: all,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
      });
      status = res.statusCode;
      cache = headerOf(res.headers, 'x-cache');
      retryAfter = headerOf(res.headers, 'retry-after');
      const cls = classifyStatus(status);
      if (cls) {
        const text = await res.body.text().catch(() => '');
        const j = parseJson(text);
        const err = j?.['error'] as { code?: unknown } | undefined;
        return done(cls, `HTTP ${status}${typeof err?.code === 'string' ? ` ${err.code}` : ''}`);
      }
      if (spec.kind === 'json') {
        const u = jsonUsage(await res.body.text());
        return done(null, undefined, u.output, u.prompt);
      }
      const dec = new TextDecoder();
      let buf = '';
      for await (const chunk of res.body) {
        const now = performance.now();
        buf = splitSse(buf + dec.decode(chunk as Uint8Array, { stream: true }), (event, data) => {
          if (spec.kind === 'candela-sse') candelaEvent(st, event, data, now);
          else openaiEvent(st, data, now);
        });
      }
      if (st.error) return done('stream_error', st.error);
      return done(null);
    } catch (err) {
      if (timeout.aborted) return done('timeout', `no answer within ${options.timeoutMs} ms`);
      if (signal?.aborted) return done('aborted', 'stopped at the run bound');
      return done('network', err instanceof Error ? ((err as { code?: string }).code ?? err.message) : String(err));
    }
  };

  const getText = async (path: string): Promise<string> => {
    const res = await pool.request({ method: 'GET', path: prefix + path, headers, signal: AbortSignal.timeout(options.timeoutMs) });
    const text = await res.body.text();
    if (res.statusCode >= 400) throw new Error(`GET ${path}: HTTP ${res.statusCode}`);
    return text;
  };

  return { send, getText, close: () => pool.close() };
}
