/**
 * Engine benchmark: Candela beside its peers, measured in one run, the two
 * sides alternating round by round (a script that prints numbers, not a test).
 *
 *   npm run bench:engine -- [--models a,b] [--embedder NAME] [--threads N] [--rounds N] [--json PATH] [--quick]
 *   LLAMA_CPP_DIR=/path/to/llama.cpp/build npm run bench:engine
 *
 * Per LLM (both default GGUFs): prefill pp256 and decode tg64 beside
 * llama.cpp's `llama-bench` (same file, same threads); aggregate tokens/s at
 * 1, 4 and 16 concurrent streams and TTFT p50 at 8 concurrent beside
 * `llama-server -np 16`, through the same streaming client; resident memory
 * with the model loaded; `/health` latency while 16 streams generate. Per
 * embedder: texts/s on ~14-token texts and ~200-token chunks (batches of 32)
 * beside onnxruntime (PyPI, pinned) on the same model's ONNX file. And the
 * time to first token of a RAG query on the demo corpus. Ratios are
 * Candela ÷ peer (for TTFT too: below 1 is better).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, PROJECT_ROOT } from '../src/config.ts';
import { Engine, kernelInfo } from '../src/engine/index.ts';
import { concurrent, probe, streamCompletion, streamQuery } from './bench/load.ts';
import { llamaBinary, llamaBuildFlags, runLlamaBench } from './bench/llama.ts';
import { onnxJar, ortPython, runOrt } from './bench/ort.ts';
import { rssMb, startCandela, startLlamaServer, type Server } from './bench/processes.ts';
import { median, quantile, ratio, round } from './bench/stats.ts';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'qwen2.5-coder-0.5b-instruct,smollm2-135m-instruct' },
    embedder: { type: 'string', default: 'all-minilm-l6-v2' },
    threads: { type: 'string', default: '0' },
    rounds: { type: 'string', default: '2' },
    json: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'skip-servers': { type: 'boolean', default: false },
    'skip-encoders': { type: 'boolean', default: false },
    'skip-rag': { type: 'boolean', default: false },
  },
});
const config = loadConfig();
const rounds = values.quick ? 1 : Math.max(1, Number(values.rounds));
const log = (s: string): void => void process.stderr.write(`${s}\n`);
const engine = new Engine({ threads: Number(values.threads) });
const threads = kernelInfo().threads;
const llamaDir = process.env['LLAMA_CPP_DIR'];
const llamaBench = llamaBinary(llamaDir, 'llama-bench');
const llamaServer = llamaBinary(llamaDir, 'llama-server');
if (llamaDir && (!llamaBench || !llamaServer)) log(`LLAMA_CPP_DIR=${llamaDir} lacks llama-bench or llama-server`);
if (!llamaDir) log('LLAMA_CPP_DIR is not set: llama.cpp columns stay empty (see the README to build it)');

const PROMPT = 256;
const GEN = 64;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Prompt texts that share no prefix, so no prompt cache helps either side. */
const readme = readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8').replace(/[`#|*\-[\]()]/g, ' ').split(/\s+/).filter(Boolean);
const passage = (i: number, words: number) => `Note ${i}. ` + Array.from({ length: words }, (_, k) => readme[(i * 131 + k * 7) % readme.length]).join(' ');

interface LlmFigures {
  prefill: number | null;
  decode: number | null;
  aggregate: Record<string, number | null>;
  ttft_p50_8_ms: number | null;
  rss_mb: number | null;
}

interface ModelReport {
  quantization: string;
  candela: LlmFigures & { health_ms?: { p50: number | null; p99: number | null; max: number | null } };
  llama_cpp: LlmFigures;
  ratios: { decode: number | null; prefill: number | null; aggregate_16: number | null; ttft_p50_8: number | null; rss: number | null };
  pairs: { prefill: (number | null)[]; decode: (number | null)[] };
}

const empty = (): LlmFigures => ({ prefill: null, decode: null, aggregate: { '1': null, '4': null, '16': null }, ttft_p50_8_ms: null, rss_mb: null });

async function benchModel(name: string): Promise<ModelReport> {
  const dir = path.join(config.modelsDir, name);
  const info = await engine.loadModel({ name: 'llm', role: 'llm', path: dir, maxBatch: 16 });
  const gguf = path.join(dir, 'model.gguf');
  log(`\n${name} (${info.quantization}), ${threads} threads`);
  // Distinct token prompts per repetition (no prefix reuse on our side).
  const ids = engine.tokenize('llm', passage(1, 4 * PROMPT));
  const promptIds = (rep: number) => ids.slice(rep * 7, rep * 7 + PROMPT);
  const gen = (tokens: number[], maxTokens: number) => engine.generate('llm', { tokens }, { params: { maxTokens, ignoreEos: true, cachePrompt: false } }).collect();
  await gen(promptIds(0).slice(0, 32), 4); // warm-up

  const c = { prefill: [] as number[], decode: [] as number[] };
  const p = { prefill: [] as number[], decode: [] as number[] };
  const pairs = { prefill: [] as (number | null)[], decode: [] as (number | null)[] };
  let commit = '';
  for (let r = 0; r < rounds; r++) {
    log(`  round ${r + 1}: candela pp${PROMPT} / tg${GEN}`);
    const pps: number[] = [];
    for (let rep = 0; rep < 3; rep++) pps.push((await gen(promptIds(rep + 3 * r), 1)).timings.prefillTokensPerSec);
    const pp = median(pps);
    const tgs: number[] = [];
    for (let rep = 0; rep < 2; rep++) tgs.push((await gen([ids[rep + 100]!], GEN + 1)).timings.decodeTokensPerSec);
    const tg = median(tgs);
    c.prefill.push(pp);
    c.decode.push(tg);
    if (llamaBench) {
      log(`  round ${r + 1}: llama-bench pp${PROMPT} / tg${GEN}`);
      const lb = runLlamaBench(llamaBench, gguf, threads, PROMPT, GEN, 2);
      commit = lb.commit;
      p.prefill.push(lb.prefill);
      p.decode.push(lb.decode);
      pairs.prefill.push(round(ratio(pp, lb.prefill), 3));
      pairs.decode.push(round(ratio(tg, lb.decode), 3));
    }
  }
  engine.unloadModel('llm');
  const candela: ModelReport['candela'] = { ...empty(), prefill: median(c.prefill), decode: median(c.decode) };
  const peer: LlmFigures = { ...empty(), prefill: p.prefill.length ? median(p.prefill) : null, decode: p.decode.length ? median(p.decode) : null };
  if (commit) log(`  llama.cpp build ${commit}`);

  if (!values['skip-servers']) await benchServers(name, gguf, candela, peer);
  return {
    quantization: info.quantization ?? '?',
    candela,
    llama_cpp: peer,
    ratios: {
      decode: round(ratio(candela.decode, peer.decode), 3),
      prefill: round(ratio(candela.prefill, peer.prefill), 3),
      aggregate_16: round(ratio(candela.aggregate['16'], peer.aggregate['16']), 3),
      ttft_p50_8: round(ratio(candela.ttft_p50_8_ms, peer.ttft_p50_8_ms), 3),
      rss: round(ratio(candela.rss_mb, peer.rss_mb), 3),
    },
    pairs,
  };
}

/** Serving: the same client against `candela serve` and `llama-server -np 16`. */
async function benchServers(name: string, gguf: string, candela: ModelReport['candela'], peer: LlmFigures): Promise<void> {
  const servers: { key: 'candela' | 'llama'; s: Server; model: string }[] = [];
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'candela-bench-'));
  log('  starting candela serve');
  servers.push({
    key: 'candela',
    model: name,
    s: await startCandela({ CANDELA_MODELS: name, CANDELA_DATA_DIR: dataDir, CANDELA_DEMO_CORPUS: 'false', CANDELA_MAX_BATCH: '16', CANDELA_THREADS: String(threads) }),
  });
  if (llamaServer) {
    log('  starting llama-server -np 16');
    servers.push({ key: 'llama', model: name, s: await startLlamaServer(llamaServer, gguf, { threads, parallel: 16, context: 16 * 256 }) });
  }
  const body = (model: string, prompt: string, maxTokens: number) => ({ model, prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true });
  for (const { key, s, model } of servers) {
    await streamCompletion(s.url, body(model, 'Warm-up: the quick brown fox', 8));
    const rss = rssMb(s.pid);
    if (key === 'candela') candela.rss_mb = round(rss, 0);
    else peer.rss_mb = round(rss, 0);
  }
  const agg: Record<string, Record<string, number[]>> = { candela: {}, llama: {} };
  const ttft: Record<string, number[]> = { candela: [], llama: [] };
  const health: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const n of [1, 4, 16]) {
      for (const { key, s, model } of servers) {
        const bodies = Array.from({ length: n }, (_, i) => body(model, `Story ${r * 100 + i}: once upon a time`, 32));
        const run = concurrent(s.url, bodies);
        const probing = key === 'candela' && n === 16 ? probe(`${s.url}/health`, 10, run) : Promise.resolve([]);
        const { wallMs, results } = await run;
        health.push(...(await probing));
        const tokens = results.reduce((t, x) => t + (x.tokens ?? x.chunks), 0);
        (agg[key]![String(n)] ??= []).push(tokens / (wallMs / 1000));
        log(`  round ${r + 1}: ${key} ${n} streams: ${(tokens / (wallMs / 1000)).toFixed(1)} tok/s`);
        await sleep(200);
      }
    }
    for (const { key, s, model } of servers) {
      const bodies = Array.from({ length: 8 }, (_, i) => body(model, passage(1000 + r * 10 + i, 90), 8));
      const { results } = await concurrent(s.url, bodies);
      ttft[key]!.push(...results.map((x) => x.ttftMs));
      log(`  round ${r + 1}: ${key} TTFT p50 at 8 concurrent: ${median(results.map((x) => x.ttftMs)).toFixed(0)} ms`);
    }
  }
  for (const n of ['1', '4', '16']) {
    candela.aggregate[n] = round(median(agg['candela']![n] ?? []), 1);
    peer.aggregate[n] = llamaServer ? round(median(agg['llama']![n] ?? []), 1) : null;
  }
  candela.ttft_p50_8_ms = round(median(ttft['candela']!), 0);
  peer.ttft_p50_8_ms = llamaServer ? round(median(ttft['llama']!), 0) : null;
  candela.health_ms = { p50: round(quantile(health, 0.5), 1), p99: round(quantile(health, 0.99), 1), max: round(Math.max(...health), 1) };
  await Promise.all(servers.map(({ s }) => s.stop()));
}

interface EncoderReport {
  candela: { embed_short: number | null; embed_chunk: number | null };
  onnxruntime: { embed_short: number | null; embed_chunk: number | null; version?: string };
  ratios: { embed_short: number | null; embed_chunk: number | null };
}

async function benchEncoder(name: string): Promise<EncoderReport> {
  const dir = path.join(config.modelsDir, name);
  await engine.loadModel({ name: 'emb', role: 'embedder', path: dir });
  const batch = 32;
  const workloads: Record<string, string[][]> = {
    embed_short: Array.from({ length: 4 }, (_, b) => Array.from({ length: batch }, (_, i) => `Sentence number ${b * batch + i} about retrieval, caching and inference servers.`)),
    embed_chunk: Array.from({ length: 1 }, (_, b) => Array.from({ length: batch }, (_, i) => passage(5000 + b * batch + i, 105))),
  };
  const tokens = (w: string) => median(engine.countEmbeddingTokens('emb', workloads[w]![0]!));
  log(`\n${name}: ${tokens('embed_short')} and ${tokens('embed_chunk')} tokens per text (median), batches of ${batch}`);
  const c: Record<string, number[]> = { embed_short: [], embed_chunk: [] };
  const o: Record<string, number[]> = { embed_short: [], embed_chunk: [] };
  let py: string | undefined;
  let jar: { jar: string; onnx: string } | undefined;
  let version: string | undefined;
  try {
    py = ortPython(log);
    jar = await onnxJar(name, log);
  } catch (e) {
    log(`onnxruntime unavailable: ${(e as Error).message}`);
  }
  for (const w of Object.keys(workloads)) await engine.embed('emb', workloads[w]![0]!); // warm-up
  for (let r = 0; r < rounds; r++) {
    for (const [w, batches] of Object.entries(workloads)) {
      const xs: number[] = [];
      for (let rep = 0; rep < 3; rep++) {
        const t = performance.now();
        for (const b of batches) await engine.embed('emb', b);
        xs.push((batches.length * batch) / ((performance.now() - t) / 1000));
      }
      c[w]!.push(median(xs));
    }
    if (py && jar) {
      const res = runOrt(py, jar, path.join(dir, 'tokenizer.json'), workloads, threads, 3);
      version = res.version;
      for (const w of Object.keys(workloads)) o[w]!.push(res[w]!);
    }
    log(`  round ${r + 1}: candela ${c['embed_short']!.at(-1)!.toFixed(1)} / ${c['embed_chunk']!.at(-1)!.toFixed(1)} texts/s` + (version ? `, onnxruntime ${o['embed_short']!.at(-1)!.toFixed(1)} / ${o['embed_chunk']!.at(-1)!.toFixed(1)}` : ''));
  }
  engine.unloadModel('emb');
  const cm = (w: string) => round(median(c[w]!), 1);
  const om = (w: string) => (o[w]!.length ? round(median(o[w]!), 1) : null);
  return {
    candela: { embed_short: cm('embed_short'), embed_chunk: cm('embed_chunk') },
    onnxruntime: { embed_short: om('embed_short'), embed_chunk: om('embed_chunk'), version },
    ratios: { embed_short: round(ratio(cm('embed_short'), om('embed_short')), 3), embed_chunk: round(ratio(cm('embed_chunk'), om('embed_chunk')), 3) },
  };
}

/** TTFT of `/v1/query/stream` on the default models and the demo corpus, one client. */
async function benchRag(): Promise<{ ttft_ms: number | null; prompt_tokens: number | null; runs: number[] }> {
  log('\nRAG query on the demo corpus (default models, one client)');
  const s = await startCandela({ CANDELA_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'candela-bench-rag-')), CANDELA_DEMO_CORPUS: 'true', CANDELA_THREADS: String(threads) });
  const questions = ['How does Candela cancel a generation?', 'What does the cost circuit breaker do when the budget is spent?', 'Which models does Candela serve by default?'];
  const runs: number[] = [];
  let promptTokens: number | null = null;
  for (const q of questions) {
    const r = await streamQuery(s.url, { query: q, cache: false });
    runs.push(Math.round(r.ttftMs));
    log(`  ${q}: TTFT ${r.ttftMs.toFixed(0)} ms`);
  }
  // The prompt's size, from the JSON route's usage.
  const j = await fetch(`${s.url}/v1/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: questions[0], cache: false, max_tokens: 1 }) });
  promptTokens = ((await j.json()) as { usage?: { prompt_tokens?: number } }).usage?.prompt_tokens ?? null;
  await s.stop();
  return { ttft_ms: round(median(runs), 0), prompt_tokens: promptTokens, runs };
}

const report: {
  machine: { cpus: number; cpu: string; threads: number; isa: string };
  llama_cpp: { dir: string | null; commit: string | null; flags: string | null };
  models: Record<string, ModelReport>;
  encoders: Record<string, EncoderReport>;
  rag?: Awaited<ReturnType<typeof benchRag>>;
} = {
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? '?', threads, isa: kernelInfo().isa },
  llama_cpp: { dir: llamaDir ?? null, commit: null, flags: llamaDir ? llamaBuildFlags(llamaDir) : null },
  models: {},
  encoders: {},
};
if (llamaBench && llamaDir) {
  const r = runLlamaBench(llamaBench, path.join(config.modelsDir, values.models.split(',')[0]!, 'model.gguf'), threads, 16, 1, 1);
  report.llama_cpp.commit = r.commit;
}
for (const m of values.models.split(',').filter(Boolean)) report.models[m] = await benchModel(m);
if (!values['skip-encoders'] && values.embedder) report.encoders[values.embedder] = await benchEncoder(values.embedder);
if (!values['skip-rag']) report.rag = await benchRag();

// The table.
const f = (n: number | null | undefined, d = 1) => (n == null ? '' : n.toFixed(d));
const lines: [string, string, string, string][] = [];
for (const [m, r] of Object.entries(report.models)) {
  lines.push([`${m} (${r.quantization})`, '', '', '']);
  lines.push([`  prefill pp${PROMPT} (tok/s)`, f(r.candela.prefill), f(r.llama_cpp.prefill), f(r.ratios.prefill, 2)]);
  lines.push([`  decode tg${GEN} (tok/s)`, f(r.candela.decode), f(r.llama_cpp.decode), f(r.ratios.decode, 2)]);
  for (const n of ['1', '4', '16']) {
    lines.push([`  aggregate, ${n} streams (tok/s)`, f(r.candela.aggregate[n]), f(r.llama_cpp.aggregate[n]), f(ratio(r.candela.aggregate[n], r.llama_cpp.aggregate[n]), 2)]);
  }
  lines.push(['  TTFT p50, 8 concurrent (ms)', f(r.candela.ttft_p50_8_ms, 0), f(r.llama_cpp.ttft_p50_8_ms, 0), f(r.ratios.ttft_p50_8, 2)]);
  lines.push(['  resident memory, loaded (MiB)', f(r.candela.rss_mb, 0), f(r.llama_cpp.rss_mb, 0), f(r.ratios.rss, 2)]);
  if (r.candela.health_ms) lines.push(['  /health p50 / p99 under 16 streams (ms)', `${f(r.candela.health_ms.p50)} / ${f(r.candela.health_ms.p99)}`, '', '']);
}
for (const [m, r] of Object.entries(report.encoders)) {
  lines.push([`${m} (onnxruntime ${r.onnxruntime.version ?? '-'})`, '', '', '']);
  lines.push(['  embeddings, ~14-token texts (texts/s)', f(r.candela.embed_short), f(r.onnxruntime.embed_short), f(r.ratios.embed_short, 2)]);
  lines.push(['  embeddings, ~200-token chunks (texts/s)', f(r.candela.embed_chunk), f(r.onnxruntime.embed_chunk), f(r.ratios.embed_chunk, 2)]);
}
if (report.rag) lines.push([`RAG /v1/query TTFT, ${report.rag.prompt_tokens ?? '?'}-token prompt (ms)`, f(report.rag.ttft_ms, 0), '', '']);
const w = Math.max(...lines.map((l) => l[0].length));
process.stdout.write(`\n${'metric'.padEnd(w)}  ${'candela'.padStart(12)}  ${'peer'.padStart(10)}  ${'ratio'.padStart(6)}\n`);
for (const l of lines) process.stdout.write(`${l[0].padEnd(w)}  ${l[1].padStart(12)}  ${l[2].padStart(10)}  ${l[3].padStart(6)}\n`);
process.stdout.write(
  `\n${report.machine.cpus} CPUs (${report.machine.cpu}), ${threads} threads, kernels ${report.machine.isa}; ` +
    `llama.cpp ${report.llama_cpp.commit ?? '-'} (${report.llama_cpp.flags ?? '-'}); ratio = candela / peer, ${rounds} round(s) each, alternating\n`,
);
if (values.json) {
  writeFileSync(values.json, JSON.stringify(report, null, 2) + '\n');
  log(`wrote ${values.json}`);
}
