/**
 * The benchmark's HTTP client: streaming OpenAI-style completions measured
 * on the client (send → first token, send → done), run alike against any
 * server, and a probe that samples a route's latency meanwhile. A thin layer
 * over `candela loadtest`'s client (src/cli/loadtest/client.ts), so the
 * benchmark and the load tester time requests the same way.
 */
import { createClient, type LoadClient, type RequestSpec } from '../../src/cli/loadtest/client.ts';

/** One streamed completion as the client saw it. */
export interface StreamResult {
  ttftMs: number;
  e2eMs: number;
  /** Content chunks received (one per token on both servers measured here). */
  chunks: number;
  /** Completion tokens per the server's usage, or the chunks when it sent none. */
  tokens: number | null;
}

const clients = new Map<string, LoadClient>();

/** One pooled client per base URL; long streams allowed (30 min). */
function clientFor(base: string): LoadClient {
  let c = clients.get(base);
  if (!c) {
    c = createClient({ baseUrl: base, timeoutMs: 30 * 60_000, connections: 256 });
    clients.set(base, c);
  }
  return c;
}

async function timed(base: string, spec: RequestSpec) {
  const r = await clientFor(base).send(spec);
  if (r.error) throw new Error(`${base}${spec.path}: ${r.detail ?? r.error}`);
  return r;
}

/** POSTs a streaming `/v1/completions` request and times it. */
export async function streamCompletion(base: string, body: Record<string, unknown>): Promise<StreamResult> {
  const r = await timed(base, { method: 'POST', path: '/v1/completions', kind: 'openai-sse', body: { ...body, stream: true, stream_options: { include_usage: true } } });
  return { ttftMs: r.ttftMs ?? Number.NaN, e2eMs: r.e2eMs, chunks: r.ttftMs === null ? 0 : r.itlMs.length + 1, tokens: r.outputTokens };
}

/** `bodies.length` streams at once; wall time from the first send to the last done. */
export async function concurrent(base: string, bodies: Record<string, unknown>[]): Promise<{ wallMs: number; results: StreamResult[] }> {
  const t0 = performance.now();
  const results = await Promise.all(bodies.map((b) => streamCompletion(base, b)));
  return { wallMs: performance.now() - t0, results };
}

/** Times GET `url` every `everyMs` until `stop` resolves; returns the latencies. */
export async function probe(url: string, everyMs: number, stop: Promise<unknown>): Promise<number[]> {
  const u = new URL(url);
  const ms: number[] = [];
  let done = false;
  void stop.finally(() => {
    done = true;
  });
  while (!done) {
    ms.push((await timed(u.origin, { method: 'GET', path: u.pathname + u.search, kind: 'json' })).e2eMs);
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return ms;
}

/** A streamed RAG answer from Candela's `/v1/query/stream`: time to the first token event. */
export async function streamQuery(base: string, body: Record<string, unknown>): Promise<{ ttftMs: number; e2eMs: number }> {
  const r = await timed(base, { method: 'POST', path: '/v1/query/stream', kind: 'candela-sse', body });
  return { ttftMs: r.ttftMs ?? Number.NaN, e2eMs: r.e2eMs };
}

/** Closes the pooled connections (at the end of a benchmark). */
export async function closeClients(): Promise<void> {
  await Promise.all([...clients.values()].map((c) => c.close()));
  clients.clear();
}
