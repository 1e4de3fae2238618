/**
 * The same load against Candela and llama.cpp's llama-server on the same
 * GGUF, side by side (a script that prints numbers, not a test):
 *
 *   LLAMA_CPP_DIR=/path/to/llama.cpp/build npm run bench:loadtest -- [--scenario north-south,cache-phases] [--scale 0.1] [--max-tokens 32] [--json PATH]
 *
 * Three runs of `candela loadtest`, one server at a time: Candela on its own
 * routes (RAG over the demo corpus, semantic cache), Candela through its
 * OpenAI-compatible route, and llama-server through the same route with as
 * many slots as the scenarios' peak concurrency. The two `--openai` runs send
 * identical requests (chat completions of the bare question, `ignore_eos`, the
 * same max tokens), so they compare the servers; the first shows what
 * retrieval and the cache add on Candela.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { loadConfig, PROJECT_ROOT } from '../src/config.ts';
import type { jsonReport } from '../src/cli/loadtest/report-json.ts';
import { llamaBinary } from './bench/llama.ts';
import { rssMb, startCandela, startLlamaServer, type Server } from './bench/processes.ts';

type Report = ReturnType<typeof jsonReport>;
const execFileP = promisify(execFile);
const log = (s: string) => process.stderr.write(`${s}\n`);

const { values } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'north-south,cache-phases' },
    scale: { type: 'string', default: '0.1' },
    'max-tokens': { type: 'string', default: '32' },
    model: { type: 'string', default: 'qwen2.5-coder-0.5b-instruct' },
    embedder: { type: 'string', default: 'all-minilm-l6-v2' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    json: { type: 'string' },
  },
});

const config = loadConfig();
const gguf = path.join(config.modelsDir, values.model, 'model.gguf');
const llamaServer = llamaBinary(process.env['LLAMA_CPP_DIR'], 'llama-server');
if (!llamaServer) log('LLAMA_CPP_DIR is not set or lacks llama-server: only Candela is measured (see the README to build it)');
const work = mkdtempSync(path.join(os.tmpdir(), 'candela-loadtest-'));
const common = ['--scenario', values.scenario, '--scale', values.scale, '--max-tokens', values['max-tokens'], '--ignore-eos', '--quiet', '--timeout-s', '600'];

/** One `candela loadtest` run against `server`; its JSON report and the server's RSS after it. */
async function loadtest(name: string, server: Server, extra: string[]): Promise<{ report: Report; rssMb: number }> {
  const json = path.join(work, `${name}.json`);
  const t = performance.now();
  const { stdout } = await execFileP(path.join(PROJECT_ROOT, 'bin/candela'), ['loadtest', '--url', server.url, '--json', json, '--html', path.join(work, `${name}.html`), ...common, ...extra], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  log(`\n== ${name} (${((performance.now() - t) / 1000).toFixed(0)} s)\n${stdout}`);
  return { report: JSON.parse(readFileSync(json, 'utf8')) as Report, rssMb: rssMb(server.pid) };
}

const runs: Record<string, { report: Report; rssMb: number }> = {};
const threads = values.threads;
const candela = await startCandela({
  CANDELA_MODELS: `${values.model},${values.embedder}`,
  CANDELA_DATA_DIR: path.join(work, 'data'),
  CANDELA_DEMO_CORPUS: 'true',
  CANDELA_THREADS: threads,
});
try {
  runs['candela'] = await loadtest('candela', candela, []);
  runs['candela-openai'] = await loadtest('candela-openai', candela, ['--openai', '--model', values.model]);
} finally {
  await candela.stop();
}
if (llamaServer) {
  // As many slots as north-south's users (the largest concurrency here), 1k tokens each.
  const slots = Math.max(1, Math.round(50 * Number(values.scale)));
  const llama = await startLlamaServer(llamaServer, gguf, { threads: Number(threads), parallel: slots, context: slots * 1024 });
  try {
    runs['llama-server'] = await loadtest('llama-server', llama, ['--openai']);
  } finally {
    await llama.stop();
  }
}

const f = (x: number | null | undefined, d = 0) => (x == null ? '-' : x.toFixed(d));
const lines = [`| scenario | run | requests (ok) | req/s | output tok/s | TTFT p50 / p95 ms | TPOT p50 ms | E2E p50 / p95 ms | cache hit rate | RSS after MiB |`, `|---|---|---|---|---|---|---|---|---|---|`];
for (const sc of values.scenario.split(',')) {
  for (const [name, run] of Object.entries(runs)) {
    const s = run.report.scenarios.find((x) => x.scenario === sc);
    if (!s) continue;
    lines.push(
      `| ${sc} | ${name} | ${s.requests} (${s.successes}) | ${f(s.rps, 2)} | ${f(s.output_tokens_per_s, 1)} | ${f(s.ttft_ms?.p50)} / ${f(s.ttft_ms?.p95)} | ${f(s.tpot_ms?.p50, 1)} | ${f(s.e2e_ms?.p50)} / ${f(s.e2e_ms?.p95)} | ${s.cache ? `${(s.cache.hit_rate * 100).toFixed(0)}%` : '-'} | ${f(run.rssMb)} |`,
    );
  }
}
process.stdout.write(`${lines.join('\n')}\n`);
log(`reports (JSON and HTML) in ${work}`);
if (values.json) writeFileSync(values.json, `${JSON.stringify({ scale: Number(values.scale), max_tokens: Number(values['max-tokens']), threads: Number(threads), model: values.model, runs: Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, { rss_mb: v.rssMb, ...v.report }])) }, null, 2)}\n`);
