/**
 * The benchmark's HTTP client: streaming OpenAI-style completions measured
 * on the client (send → first token, send → done), run alike against any
 * server, and a probe that samples a route's latency meanwhile.
 */

/** One streamed completion as the client saw it. */
export interface StreamResult {
  ttftMs: number;
  e2eMs: number;
  /** Content chunks received (one per token on both servers measured here). */
  chunks: number;
  /** Completion tokens per the server's usage, when it sent one. */
  tokens: number | null;
}

/** Reads an SSE response, calling `onData` with each event's data and event name. */
async function readSse(res: Response, onData: (data: string, event: string | undefined) => void): Promise<void> {
  if (!res.body) throw new Error('no response body');
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = (await reader.read()) as { value: Uint8Array | undefined; done: boolean };
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let at: number;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, at);
      buf = buf.slice(at + 2);
      let event: string | undefined;
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      if (data.length) onData(data.join('\n'), event);
    }
  }
}

/** POSTs a streaming `/v1/completions` request and times it. */
export async function streamCompletion(base: string, body: Record<string, unknown>): Promise<StreamResult> {
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
  });
  if (!res.ok) throw new Error(`${base}: HTTP ${res.status} ${await res.text()}`);
  let ttft = Number.NaN;
  let chunks = 0;
  let tokens: number | null = null;
  await readSse(res, (data) => {
    if (data === '[DONE]') return;
    const j = JSON.parse(data) as { choices?: { text?: string }[]; usage?: { completion_tokens?: number } | null; error?: unknown };
    if (j.error) throw new Error(`${base}: ${JSON.stringify(j.error)}`);
    if (j.choices?.[0]?.text) {
      if (chunks === 0) ttft = performance.now() - t0;
      chunks++;
    }
    if (j.usage?.completion_tokens != null) tokens = j.usage.completion_tokens;
  });
  return { ttftMs: ttft, e2eMs: performance.now() - t0, chunks, tokens };
}

/** `bodies.length` streams at once; wall time from the first send to the last done. */
export async function concurrent(base: string, bodies: Record<string, unknown>[]): Promise<{ wallMs: number; results: StreamResult[] }> {
  const t0 = performance.now();
  const results = await Promise.all(bodies.map((b) => streamCompletion(base, b)));
  return { wallMs: performance.now() - t0, results };
}

/** Times GET `url` every `everyMs` until `stop` resolves; returns the latencies. */
export async function probe(url: string, everyMs: number, stop: Promise<unknown>): Promise<number[]> {
  const ms: number[] = [];
  let done = false;
  void stop.finally(() => {
    done = true;
  });
  while (!done) {
    const t = performance.now();
    const r = await fetch(url);
    await r.arrayBuffer();
    ms.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return ms;
}

/** A streamed RAG answer from Candela's `/v1/query/stream`: time to the first token event. */
export async function streamQuery(base: string, body: Record<string, unknown>): Promise<{ ttftMs: number; e2eMs: number }> {
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/query/stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${base}: HTTP ${res.status} ${await res.text()}`);
  let ttft = Number.NaN;
  await readSse(res, (data, event) => {
    if (event === 'token' && Number.isNaN(ttft)) ttft = performance.now() - t0;
    if (event === 'error') throw new Error(data);
  });
  return { ttftMs: ttft, e2eMs: performance.now() - t0 };
}
