/**
 * `npm run eval:answers`: the answer evaluation on a real server started
 * here (on a free port, a fresh data directory, no demo corpus, no cache
 * between runs), with the corpus of eval/answers/questions.json ingested
 * through /v1/documents and every question asked through /v1/query at
 * temperature 0.
 *
 *   npm run eval:answers                              # the default prompt, default LLM
 *   npm run eval:answers -- --variant all --json out.json
 *   npm run eval:answers -- --model qwen2.5-coder-0.5b-instruct --variant original,default
 *   npm run eval:answers -- --subset test --concurrency 4   # the questions __test__/answer-eval.test.ts asks
 *   options: --model NAME, --variant NAME[,NAME|all], --concurrency N (1), --subset test, --limit N, --every K,
 *            --max-tokens N, --top-k N (chunks kept for the prompt), --json FILE, --verbose (every answer)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadConfig, PROJECT_ROOT } from '../src/config.ts';
import { serveModelSpecs } from '../src/cli/serve-command.ts';
import { MODELS } from '../src/models/manifest.ts';
import { formatSummary, ingestCorpus, loadEvalSet, readCorpus, runAnswerEval, summarize, testSubset, type EvalSummary, type QuestionResult } from '../src/eval/answer-eval.ts';
import { PROMPT_VARIANTS, type PromptVariant } from '../src/eval/prompt-variants.ts';
import { startServer } from '../src/bootstrap.ts';

const SET_FILE = path.join(PROJECT_ROOT, 'eval', 'answers', 'questions.json');
/** The default set's embedders: BGE for retrieval, MiniLM for the semantic cache (off here). */
const EMBEDDERS = MODELS.filter((m) => m.role === 'embedder' && m.default).map((m) => m.name);
/** The LLM `npm start` serves: the first LLM of the default set. */
const DEFAULT_LLM = MODELS.find((m) => m.role === 'llm' && m.default)!.name;

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: DEFAULT_LLM },
    variant: { type: 'string', default: 'default' },
    concurrency: { type: 'string', default: '1' },
    limit: { type: 'string' },
    every: { type: 'string' },
    subset: { type: 'string' },
    'max-tokens': { type: 'string' },
    'top-k': { type: 'string' },
    json: { type: 'string' },
    verbose: { type: 'boolean', default: false },
  },
});

const names = values.variant === 'all' ? PROMPT_VARIANTS.map((v) => v.name) : values.variant.split(',').map((s) => s.trim());
const variants: PromptVariant[] = names.map((n) => {
  const v = PROMPT_VARIANTS.find((x) => x.name === n);
  if (!v) throw new Error(`unknown variant '${n}' (known: ${PROMPT_VARIANTS.map((x) => x.name).join(', ')}, all)`);
  return v;
});
const set = loadEvalSet(SET_FILE);
// --every K keeps every K-th question (a quick sample across all documents); --limit N the first N.
// --subset test: the fixed subset of the evaluation test (testSubset).
if (values.subset !== undefined && values.subset !== 'test') throw new Error(`unknown subset '${values.subset}' (known: test)`);
const every = Number(values.every ?? 1);
const sampled = (values.subset === 'test' ? testSubset(set.questions) : set.questions).filter((_, i) => i % every === 0);
const questions = values.limit ? sampled.slice(0, Number(values.limit)) : sampled;
const documents = readCorpus(set, path.join(PROJECT_ROOT, 'node_modules'));
const concurrency = Number(values.concurrency);
const body: Record<string, unknown> = {
  ...(values['max-tokens'] ? { max_tokens: Number(values['max-tokens']) } : {}),
  // Chunks given to the model (the query's top_k_rerank; grouped layouts make fewer sources of them).
  ...(values['top-k'] ? { top_k_rerank: Number(values['top-k']) } : {}),
};

const base = loadConfig(process.env);
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'candela-eval-'));
const runs: { variant: string; model: string; summary: EvalSummary; results: QuestionResult[] }[] = [];
try {
  for (const [i, v] of variants.entries()) {
    const config = Object.freeze({
      ...base,
      serveModels: [values.model, ...EMBEDDERS],
      port: 0,
      host: '127.0.0.1',
      dataDir,
      demoCorpus: false,
      cacheEnabled: false,
      budget: 0,
      rateLimitIpRpm: 0,
      rateLimitIpTpm: 0,
      authEnabled: false,
      ragSystemPrompt: v.system,
    });
    const t = performance.now();
    const server = await startServer({ config, models: serveModelSpecs(config), logger: pino({ level: 'warn' }), ragLayout: v.layout });
    try {
      await server.loaded;
      // The documents persist in the data directory: the first variant ingests them.
      if (i === 0) await ingestCorpus({ baseUrl: server.url, documents });
      process.stderr.write(`[${v.name}] ${values.model}: server ready in ${((performance.now() - t) / 1000).toFixed(1)} s; ${questions.length} questions\n`);
      const results = await runAnswerEval({
        baseUrl: server.url,
        questions,
        body,
        concurrency,
        onResult: (r) => {
          const mark = r.answerable ? (r.correct && r.citationCorrect ? 'ok  ' : r.correct ? 'cite' : 'miss') : r.refused ? 'ok  ' : 'hall';
          if (values.verbose) process.stderr.write(`  ${mark} ${r.id}: ${JSON.stringify(r.answer)}\n`);
        },
      });
      const summary = summarize(results);
      runs.push({ variant: v.name, model: values.model, summary, results });
      process.stdout.write(`${formatSummary(`${v.name} (${values.model})`, summary)}\n\n`);
    } finally {
      await server.close();
    }
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}

if (runs.length > 1) {
  process.stdout.write('| variant | answered + cited | accuracy | citations | refusals | TTFT p50 ms | total p50 ms |\n|---|---|---|---|---|---|---|\n');
  for (const r of runs) {
    const s = r.summary;
    const p = (x: number): string => `${(100 * x).toFixed(0)} %`;
    process.stdout.write(`| ${r.variant} | ${p(s.answeredAndCited)} | ${p(s.accuracy)} | ${p(s.citationCorrectness)} | ${p(s.refusalRate)} | ${s.ttftMs.p50.toFixed(0)} | ${s.totalMs.p50.toFixed(0)} |\n`);
  }
}
if (values.json) writeFileSync(values.json, `${JSON.stringify({ set: path.relative(PROJECT_ROOT, SET_FILE), concurrency, body, runs }, null, 2)}\n`);
