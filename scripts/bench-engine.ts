/**
 * Engine benchmark (a script that prints numbers, not a test).
 *
 *   npm run bench:engine -- [--model NAME] [--embedder NAME] [--threads N] [--json]
 *
 * Measures load time, prefill and decode tokens/s, time to first token,
 * aggregate tokens/s with 1, 4 and 16 concurrent generations, and embeddings
 * per second. With LLAMA_CPP_DIR pointing at a llama.cpp build (made outside
 * this repository), runs llama-bench on the same GGUF and thread count in the
 * same run and prints the ratio.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.ts';
import { Engine } from '../src/engine/index.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'qwen2.5-coder-0.5b-instruct' },
    embedder: { type: 'string', default: 'all-minilm-l6-v2' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    prompt: { type: 'string', default: '256' },
    gen: { type: 'string', default: '64' },
    json: { type: 'boolean', default: false },
  },
});
const config = loadConfig();
const promptTokens = Number(values.prompt);
const genTokens = Number(values.gen);
const threads = Number(values.threads);
const rows: { metric: string; candela: number; peer?: number; unit: string }[] = [];
const log = (s: string): void => void process.stderr.write(`${s}\n`);

const engine = new Engine();
const modelDir = path.join(config.modelsDir, values.model);
if (!existsSync(modelDir)) throw new Error(`${values.model} is not downloaded; run: candela models pull ${values.model}`);
const gguf = path.join(modelDir, readdirSync(modelDir).find((f) => f.endsWith('.gguf')) ?? 'model.gguf');

log(`loading ${values.model} (threads: ${threads}, rayon/candle use RAYON_NUM_THREADS or all cores)`);
let t0 = performance.now();
const info = await engine.loadModel({ name: 'llm', role: 'llm', path: modelDir, maxBatch: 16 });
rows.push({ metric: `load ${values.model} (${info.quantization})`, candela: performance.now() - t0, unit: 'ms' });

// A prompt of exactly `promptTokens` tokens (token ids of repeated text).
const filler = engine.tokenize('llm', 'The quick brown fox jumps over the lazy dog. '.repeat(Math.ceil(promptTokens / 9) + 1));
const promptIds = filler.slice(0, promptTokens);

const gen = async (tokens: number[], maxTokens: number) =>
  engine.generate('llm', { tokens }, { params: { maxTokens, ignoreEos: true } }).collect();

log('warm-up');
await gen(promptIds.slice(0, 16), 4);

log(`prefill ${promptTokens} tokens, decode ${genTokens} tokens`);
const single = await gen(promptIds, genTokens);
rows.push({ metric: `prefill (pp${promptTokens})`, candela: single.timings.prefillTokensPerSec, unit: 'tok/s' });
rows.push({ metric: `decode (tg${genTokens})`, candela: single.timings.decodeTokensPerSec, unit: 'tok/s' });
const short = await gen(promptIds.slice(0, 16), 1);
rows.push({ metric: 'time to first token (16-token prompt)', candela: short.timings.ttftMs, unit: 'ms' });
rows.push({ metric: `time to first token (${promptTokens}-token prompt)`, candela: single.timings.ttftMs, unit: 'ms' });

// Short prompts, so the figure is about decoding many sequences at once.
for (const n of [1, 4, 16]) {
  log(`${n} concurrent generations x 32 tokens (8-token prompts)`);
  const prompts = Array.from({ length: n }, (_, i) => promptIds.slice(i, i + 8));
  t0 = performance.now();
  const results = await Promise.all(prompts.map((p) => gen(p, 32)));
  const secs = (performance.now() - t0) / 1000;
  const total = results.reduce((s, r) => s + r.usage.completionTokens, 0);
  rows.push({ metric: `aggregate generation, ${n} concurrent`, candela: total / secs, unit: 'tok/s' });
}

const embDir = path.join(config.modelsDir, values.embedder);
if (existsSync(embDir)) {
  log(`embeddings with ${values.embedder}`);
  t0 = performance.now();
  await engine.loadModel({ name: 'emb', role: 'embedder', path: embDir });
  rows.push({ metric: `load ${values.embedder}`, candela: performance.now() - t0, unit: 'ms' });
  const sentences = Array.from({ length: 32 }, (_, i) => `Sentence number ${i} about retrieval, caching and inference servers.`);
  await engine.embed('emb', sentences);
  t0 = performance.now();
  const rounds = 8;
  for (let i = 0; i < rounds; i++) await engine.embed('emb', sentences);
  rows.push({ metric: 'embeddings (batches of 32, ~14 tokens)', candela: (rounds * 32) / ((performance.now() - t0) / 1000), unit: 'texts/s' });
}

// The peer: llama.cpp's own benchmark on the same file and thread count.
const llamaDir = process.env['LLAMA_CPP_DIR'];
if (llamaDir) {
  const bin = [path.join(llamaDir, 'bin', 'llama-bench'), path.join(llamaDir, 'llama-bench')].find((p) => existsSync(p));
  if (!bin) {
    log(`LLAMA_CPP_DIR=${llamaDir} has no llama-bench`);
  } else {
    log(`llama-bench on the same GGUF with ${threads} threads`);
    const r = spawnSync(bin, ['-m', gguf, '-t', String(threads), '-p', String(promptTokens), '-n', String(genTokens), '-r', '3', '-o', 'json'], {
      encoding: 'utf8',
    });
    if (r.status !== 0) {
      log(`llama-bench failed: ${r.stderr}`);
    } else {
      const out = JSON.parse(r.stdout) as { n_prompt: number; n_gen: number; avg_ts: number; build_commit?: string }[];
      const pp = out.find((o) => o.n_prompt > 0 && o.n_gen === 0)?.avg_ts;
      const tg = out.find((o) => o.n_gen > 0 && o.n_prompt === 0)?.avg_ts;
      for (const row of rows) {
        if (row.metric.startsWith('prefill')) row.peer = pp;
        if (row.metric.startsWith('decode')) row.peer = tg;
      }
      log(`llama.cpp build ${out[0]?.build_commit ?? '?'}`);
    }
  }
}

if (values.json) {
  process.stdout.write(JSON.stringify({ model: values.model, threads, cpus: os.cpus().length, rows }, null, 2) + '\n');
} else {
  const fmt = (n: number | undefined) => (n === undefined ? '' : n >= 100 ? n.toFixed(0) : n.toFixed(2));
  const w = Math.max(...rows.map((r) => r.metric.length));
  process.stdout.write(`\n${'metric'.padEnd(w)}  ${'candela'.padStart(10)}  ${'llama.cpp'.padStart(10)}  ${'ratio'.padStart(6)}  unit\n`);
  for (const r of rows) {
    const ratio = r.peer ? (r.candela / r.peer).toFixed(2) : '';
    process.stdout.write(`${r.metric.padEnd(w)}  ${fmt(r.candela).padStart(10)}  ${fmt(r.peer).padStart(10)}  ${ratio.padStart(6)}  ${r.unit}\n`);
  }
  process.stdout.write(`\n${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ${threads} threads; ratio = candela / llama.cpp\n`);
}
for (const m of engine.listModels()) engine.unloadModel(m.name);
