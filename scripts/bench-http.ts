/**
 * HTTP latency benchmark (a script that prints numbers, not a test).
 *
 *   npm run bench:http -- [--rounds N]
 *
 * Starts the server in-process with the default models and a fresh data
 * directory (the demo corpus is ingested), then times each route over N
 * sequential requests and prints p50 / p95 / max in milliseconds.
 */
import os from 'node:os';
import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { serveModelSpecs } from '../src/cli/serve-command.ts';
import { loadConfig } from '../src/config.ts';
import { startServer } from '../src/bootstrap.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '10' } } });
const rounds = Number(values.rounds);
const base = loadConfig();
const config = Object.freeze({ ...base, port: 0, dataDir: mkdtempSync(path.join(os.tmpdir(), 'candela-bench-')), demoCorpus: true });
const server = await startServer({ config, models: serveModelSpecs(config), logger: pino({ level: 'silent' }) });
let t = performance.now();
await server.loaded;
process.stderr.write(`models + demo corpus ready in ${((performance.now() - t) / 1000).toFixed(1)} s\n`);

const post = (p: string, body: unknown) =>
  fetch(`${server.url}${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function time(name: string, run: () => Promise<number | void>): Promise<void> {
  const ms: number[] = [];
  const extra: number[] = [];
  for (let i = 0; i < rounds; i++) {
    t = performance.now();
    const x = await run();
    ms.push(performance.now() - t);
    if (typeof x === 'number') extra.push(x);
  }
  ms.sort((a, b) => a - b);
  extra.sort((a, b) => a - b);
  const q = (a: number[], p: number) => a[Math.min(a.length - 1, Math.floor(p * a.length))]!;
  const ttft = extra.length ? `  ttft p50 ${q(extra, 0.5).toFixed(0)}` : '';
  process.stdout.write(`${name.padEnd(46)} p50 ${q(ms, 0.5).toFixed(1).padStart(8)}  p95 ${q(ms, 0.95).toFixed(1).padStart(8)}  max ${ms.at(-1)!.toFixed(1).padStart(8)}${ttft}\n`);
}

const ok = async (r: Response) => {
  if (!r.ok) throw new Error(`${r.url}: ${r.status} ${await r.text()}`);
  return r;
};
process.stdout.write(`\n${rounds} sequential requests per route, ${os.cpus().length} CPUs; milliseconds\n`);
await time('GET /health', async () => void (await ok(await fetch(`${server.url}/health`))).text());
await time('POST /v1/tokenize', async () => void (await ok(await post('/v1/tokenize', { text: 'How does Candela stream tokens?' }))).json());
await time('POST /v1/embeddings (1 text, MiniLM)', async () => void (await ok(await post('/v1/embeddings', { input: 'How does Candela stream tokens?' }))).json());
await time('POST /v1/embeddings (32 texts)', async () =>
  void (await ok(await post('/v1/embeddings', { input: Array.from({ length: 32 }, (_, i) => `sentence ${i} about servers`) }))).json(),
);
await time('POST /v1/generate (default LLM, 32 tokens)', async () =>
  void (await ok(await post('/v1/generate', { messages: [{ role: 'user', content: 'Name a colour.' }], max_tokens: 32, ignore_eos: true }))).json(),
);
await time('POST /v1/chat/completions (16 tokens)', async () =>
  void (await ok(await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'Say hi.' }], max_tokens: 16, temperature: 0 }))).json(),
);
await time('POST /v1/query (RAG over the demo corpus)', async () => {
  const r = (await (await ok(await post('/v1/query', { query: 'How does Candela cancel a generation?', max_tokens: 80, cache: false }))).json()) as { timings: { ttft_ms: number } };
  return r.timings.ttft_ms;
});
await server.close();
