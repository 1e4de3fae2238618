/**
 * A real HTTP server with known behaviour, for the load tester's tests:
 * token streams in Candela's and OpenAI's SSE shapes with injected delays
 * (time to first token, gap between tokens, token count, all read from the
 * request body), chosen error statuses, streams that fail midway, requests
 * that hang, and a record of when each request arrived and how many were in
 * flight then.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the server saw of one request. */
export interface Arrival {
  /** ms since the server started. */
  atMs: number;
  /** Requests in flight, this one included. */
  inFlight: number;
  path: string;
}

/** A running fake server. */
export interface FakeServer {
  url: string;
  arrivals: Arrival[];
  close(): Promise<void>;
}

interface StreamBody {
  ttft_ms?: number;
  itl_ms?: number;
  tokens?: number;
  /** Send an `error` event after this many tokens. */
  fail_after?: number;
  /** Answer with this status instead. */
  status?: number;
  /** Never answer (until the client goes). */
  hang?: boolean;
  /** Delay of a JSON answer. */
  delay_ms?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts the fake server on a free loopback port. */
export async function startFakeServer(): Promise<FakeServer> {
  const t0 = performance.now();
  const arrivals: Arrival[] = [];
  let inFlight = 0;
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((req, res) => {
    inFlight++;
    arrivals.push({ atMs: performance.now() - t0, inFlight, path: req.url ?? '' });
    let closed = false;
    res.on('close', () => {
      closed = true;
      inFlight--;
    });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        let body: StreamBody = {};
        try {
          body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as StreamBody) : {};
        } catch {
          res.writeHead(400).end();
          return;
        }
        if (body.hang) return;
        if (body.status && body.status !== 200) {
          res.writeHead(body.status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'injected', code: `injected_${body.status}` } }));
          return;
        }
        const path = (req.url ?? '').split('?')[0];
        if (path === '/_arrivals') {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(arrivals));
          return;
        }
        if (path === '/v1/generate/stream' || path === '/v1/chat/completions') {
          const openai = path === '/v1/chat/completions';
          const n = body.tokens ?? 8;
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-cache': 'miss' });
          const send = (event: string | null, data: unknown) => res.write(`${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
          if (!openai) send('meta', { prompt_tokens: 5 });
          await sleep(body.ttft_ms ?? 0);
          for (let i = 0; i < n && !closed; i++) {
            if (i > 0) await sleep(body.itl_ms ?? 0);
            if (body.fail_after !== undefined && i === body.fail_after) {
              if (openai) send(null, { error: { message: 'injected', code: 'engine_failed' } });
              else send('error', { code: 'engine_failed', message: 'injected' });
              res.end();
              return;
            }
            if (openai) send(null, { choices: [{ index: 0, delta: { content: `t${i}` } }] });
            else send('token', { text: `t${i}` });
          }
          if (openai) {
            send(null, { choices: [], usage: { prompt_tokens: 5, completion_tokens: n } });
            send(null, '[DONE]');
          } else send('done', { token_count: n, usage: { prompt_tokens: 5, completion_tokens: n } });
          res.end();
          return;
        }
        await sleep(body.delay_ms ?? 0);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', usage: { prompt_tokens: 3, completion_tokens: 4 } }));
      })();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    arrivals,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
