/**
 * Back-pressure end to end: a streaming client that stops reading fills the
 * socket, `res.write` returns false, the route stops pulling tokens, and the
 * engine pauses that sequence (it stays running, no more tokens are made).
 * When the client reads again it gets the whole answer.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, it } from 'node:test';
import { writeTestModel } from './helpers/fixtures.ts';
import type { RunningServer } from '../src/bootstrap.ts';
import { tempDir } from './helpers/paths.ts';
import { startTinyServer } from './helpers/tiny-server.ts';

// The model's name is echoed in every OpenAI chunk: a long one makes each
// chunk ~64 KB, so the loopback socket buffers (6 MB on the machine this was
// written on, at most tcp_rmem + tcp_wmem, ~36 MB, on common kernels) fill
// within a few hundred tokens instead of several hundred thousand.
const MODEL = `long-${'n'.repeat(64_000)}`;
const MAX_TOKENS = 1500;

let server: RunningServer;

before(async () => {
  server = await startTinyServer([{ name: MODEL, role: 'llm', path: writeTestModel(tempDir(), 'llama', 'q8_0', 4096) }]);
});
after(async () => {
  await server.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('a client that stops reading pauses its sequence in the engine; reading again gets the whole answer', async () => {
  const stats = () => server.models.schedulerStats(MODEL);
  const before = stats().generatedTokens;
  const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'go' }], max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true } });
  const socket = net.connect(server.port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  // Read the headers and the first events, then stop reading.
  while (chunks.length === 0) await sleep(5);
  socket.pause();

  // The sequence must come to a halt well short of max_tokens and stay there, still running.
  let last = -1;
  let steady = 0;
  for (let i = 0; i < 200 && steady < 5; i++) {
    await sleep(100);
    const now = stats().generatedTokens - before;
    steady = now === last ? steady + 1 : 0;
    last = now;
  }
  assert.equal(steady, 5, `generation kept going while the client was not reading (${last} tokens)`);
  assert.ok(last < MAX_TOKENS / 2, `paused after ${last} of ${MAX_TOKENS} tokens`);
  assert.equal(stats().running, 1, 'paused, not cancelled');

  socket.resume();
  await ended;
  const events = sseData(dechunk(Buffer.concat(chunks)));
  assert.equal(events.at(-1), '[DONE]');
  const parsed = events.slice(0, -1).map((e) => JSON.parse(e) as { choices: { delta?: { content?: string }; finish_reason: string | null }[]; usage?: { completion_tokens: number } | null });
  const text = parsed.map((e) => e.choices[0]?.delta?.content ?? '').join('');
  assert.equal(parsed.at(-2)?.choices[0]?.finish_reason, 'length');
  assert.equal(parsed.at(-1)?.usage?.completion_tokens, MAX_TOKENS);
  assert.equal(stats().running, 0);
  // The same request answered without streaming (greedy: the same text) shows nothing was lost.
  const whole = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body.replace('"stream":true', '"stream":false') });
  const expected = ((await whole.json()) as { choices: { message: { content: string } }[] }).choices[0]?.message.content;
  assert.equal(text, expected, 'the streamed text is the whole answer');
});

/** The body of a chunked HTTP/1.1 response. */
function dechunk(raw: Buffer): Buffer {
  let at = raw.indexOf('\r\n\r\n') + 4;
  const parts: Buffer[] = [];
  for (;;) {
    const eol = raw.indexOf('\r\n', at);
    const size = parseInt(raw.subarray(at, eol).toString('latin1'), 16);
    if (!(size > 0)) return Buffer.concat(parts);
    parts.push(raw.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** The `data:` payloads of an SSE body. */
function sseData(body: Buffer): string[] {
  return body
    .toString('utf8')
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice('data: '.length));
}
