/**
 * Timeouts and limits on the wire, over real sockets: a truncated or a
 * dripping body gets 408 and its connection closed, slow headers get 408,
 * an idle keep-alive connection is closed, connections past the cap are
 * refused, one client's concurrent requests are capped (429), a generation
 * past its wall-clock limit ends `time_limit`, and a known path asked with
 * another method gets 405 with `Allow`.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { writeTestModel } from './helpers/fixtures.ts';
import type { RunningServer } from '../src/bootstrap.ts';
import { tempDir } from './helpers/paths.ts';
import { startTinyServer } from './helpers/tiny-server.ts';

const BODY_TIMEOUT_MS = 600;
const HEADERS_TIMEOUT_MS = 1000;
const KEEP_ALIVE_MS = 300;
const GENERATION_LIMIT_MS = 150;

/** A raw client connection: what the server sent, and when it closed. */
interface RawConn {
  socket: net.Socket;
  /** Everything received so far. */
  text(): string;
  /** Resolves with the ms from connect to the server closing the connection. */
  closed: Promise<number>;
}

function connect(port: number): Promise<RawConn> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let received = '';
    const socket = net.connect(port, '127.0.0.1');
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      received += d;
    });
    const closed = new Promise<number>((res) => socket.once('close', () => res(Date.now() - started)));
    socket.on('error', () => undefined); // a reset is a close too
    socket.once('connect', () => resolve({ socket, text: () => received, closed }));
    socket.once('error', reject);
  });
}

const statusOf = (raw: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? NaN);

function head(path: string, contentLength: number, extra = ''): string {
  return `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${contentLength}\r\n${extra}\r\n`;
}

describe('wire limits', () => {
  const dir = tempDir();
  let server: RunningServer;
  let port = 0;

  before(async () => {
    server = await startTinyServer(
      [
        { name: 'tiny', role: 'llm', path: writeTestModel(dir, 'qwen2', 'q8_0') },
        { name: 'long', role: 'llm', path: writeTestModel(dir, 'llama', 'q8_0', 4096) },
      ],
      {
        bodyTimeoutMs: BODY_TIMEOUT_MS,
        headersTimeoutMs: HEADERS_TIMEOUT_MS,
        keepAliveTimeoutMs: KEEP_ALIVE_MS,
        maxRequestsPerClient: 2,
        generationTimeoutMs: GENERATION_LIMIT_MS,
      },
    );
    port = server.port;
  });
  after(async () => {
    await server.close();
  });

  it('a body shorter than its Content-Length gets 408 and the connection is closed', async () => {
    const c = await connect(port);
    c.socket.write(head('/v1/generate', 100) + '{"prompt": "trunc');
    const ms = await c.closed;
    assert.equal(statusOf(c.text()), 408, c.text());
    assert.match(c.text(), /"code":"request_timeout"/);
    assert.match(c.text(), /connection: close/i);
    assert.ok(ms >= BODY_TIMEOUT_MS - 50 && ms < BODY_TIMEOUT_MS + 2000, `closed after ${ms} ms`);
  });

  it('a body dripping a byte at a time past the limit gets 408', async () => {
    const c = await connect(port);
    const body = JSON.stringify({ prompt: 'drip drip drip drip drip drip', max_tokens: 1 });
    c.socket.write(head('/v1/generate', body.length));
    let i = 0;
    // A byte every 50 ms: the body would need far longer than the limit.
    const drip = setInterval(() => {
      if (i < body.length && !c.socket.destroyed) c.socket.write(body[i++]!);
    }, 50);
    const ms = await c.closed;
    clearInterval(drip);
    assert.ok(i < body.length, 'the server gave up before the body was complete');
    assert.equal(statusOf(c.text()), 408, c.text());
    assert.ok(ms < BODY_TIMEOUT_MS + 2000, `closed after ${ms} ms`);
  });

  it('a chunked body that stops mid-way gets 408', async () => {
    const c = await connect(port);
    c.socket.write('POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"inp\r\n');
    await c.closed;
    assert.equal(statusOf(c.text()), 408, c.text());
  });

  it('a body that arrives in time is served', async () => {
    const c = await connect(port);
    const body = JSON.stringify({ prompt: 'hi', max_tokens: 2, model: 'tiny' });
    c.socket.write(head('/v1/generate', body.length, 'Connection: close\r\n') + body.slice(0, 5));
    await new Promise((r) => setTimeout(r, BODY_TIMEOUT_MS / 3));
    c.socket.write(body.slice(5));
    await c.closed;
    assert.equal(statusOf(c.text()), 200, c.text());
  });

  it('headers that never end get 408 within the headers timeout', async () => {
    const c = await connect(port);
    c.socket.write('GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    const ms = await c.closed;
    assert.equal(statusOf(c.text()), 408, c.text());
    // Node checks every second.
    assert.ok(ms >= HEADERS_TIMEOUT_MS - 50 && ms < HEADERS_TIMEOUT_MS + 2500, `closed after ${ms} ms`);
  });

  it('an idle keep-alive connection is closed after the keep-alive timeout', async () => {
    const c = await connect(port);
    c.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    const ms = await c.closed;
    assert.equal(statusOf(c.text()), 200);
    assert.match(c.text(), /keep-alive: timeout=0?\.?\d*/i);
    assert.ok(ms >= KEEP_ALIVE_MS - 50 && ms < KEEP_ALIVE_MS + 2000, `closed after ${ms} ms`);
  });

  it('caps concurrent requests per client: the third in flight gets 429, a slot frees when one ends', async () => {
    // Two requests held open by bodies that never complete.
    const held = await Promise.all([connect(port), connect(port)]);
    for (const c of held) c.socket.write(head('/v1/generate', 50) + '{');
    await new Promise((r) => setTimeout(r, 100));
    const third = await fetch(`http://127.0.0.1:${port}/v1/models`);
    assert.equal(third.status, 429);
    assert.equal(third.headers.get('retry-after'), '1');
    assert.equal(((await third.json()) as { error: { code: string } }).error.code, 'too_many_concurrent_requests');
    // Probes are never capped.
    assert.equal((await fetch(`http://127.0.0.1:${port}/health/ready`)).status, 200);
    await Promise.all(held.map((c) => c.closed)); // both time out (408)
    assert.equal((await fetch(`http://127.0.0.1:${port}/v1/models`)).status, 200);
  });

  it('a generation past its wall-clock limit ends with finish reason time_limit', async () => {
    const started = Date.now();
    const res = await fetch(`http://127.0.0.1:${port}/v1/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'long', prompt: 'x', max_tokens: 4000, ignore_eos: true }),
    });
    const body = (await res.json()) as { finish_reason: string; usage: { completion_tokens: number } };
    assert.equal(res.status, 200);
    assert.equal(body.finish_reason, 'time_limit');
    assert.ok(body.usage.completion_tokens < 4000, `${body.usage.completion_tokens} tokens`);
    assert.ok(Date.now() - started >= GENERATION_LIMIT_MS);
    const openai = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'long', prompt: 'x', max_tokens: 4000, ignore_eos: true }),
    });
    const choice = ((await openai.json()) as { choices: { finish_reason: string }[] }).choices[0];
    assert.equal(choice?.finish_reason, 'length', 'OpenAI clients see a truncation');
  });

  it('a known path with another method gets 405 and Allow; an unknown path stays 404', async () => {
    const get = await fetch(`http://127.0.0.1:${port}/v1/generate`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    assert.equal(((await get.json()) as { error: { code: string } }).error.code, 'method_not_allowed');
    const del = await fetch(`http://127.0.0.1:${port}/health`, { method: 'DELETE' });
    assert.equal(del.status, 405);
    assert.equal(del.headers.get('allow'), 'GET, HEAD');
    const param = await fetch(`http://127.0.0.1:${port}/v1/models/tiny`, { method: 'PUT' });
    assert.equal(param.status, 405, 'routes with parameters too');
    assert.match(param.headers.get('allow') ?? '', /GET/);
    assert.equal((await fetch(`http://127.0.0.1:${port}/v1/nothing-here`, { method: 'DELETE' })).status, 404);
  });
});

describe('connection cap', () => {
  let server: RunningServer;
  after(async () => {
    await server.close();
  });

  it('connections past the cap are closed at once; the ones below it are served', async () => {
    server = await startTinyServer([], { maxConnections: 2, keepAliveTimeoutMs: 5000 });
    const [first, second] = await Promise.all([connect(server.port), connect(server.port)]);
    // Let the server accept both before the third arrives.
    await new Promise((r) => setTimeout(r, 100));
    const third = await connect(server.port);
    third.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    const ms = await third.closed;
    assert.equal(third.text(), '', 'no response past the cap');
    assert.ok(ms < 1000);
    first.socket.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await first.closed;
    assert.equal(statusOf(first.text()), 200);
    second.socket.destroy();
  });
});
