/**
 * The leak test's worker, run in its own process with `--expose-gc`: loads
 * a tiny LLM and a tiny embedder through the engine API and runs CYCLES
 * cycles, each a full generation, an embedding of two texts, a generation
 * cancelled by its AbortSignal after its first token and one abandoned by
 * leaving the loop, four cycles at a time (so the scheduler batches them).
 * After WARMUP cycles and then every SAMPLE_EVERY cycles it collects garbage
 * and prints one JSON line: `{cycle, rssMiB, heapMiB, externalMiB}` (RSS
 * from /proc/self/status). Usage: leak-cycles.ts FIXTURE_DIR CYCLES WARMUP SAMPLE_EVERY.
 */
import { Engine } from '../../src/engine/index.ts';
import { writeTestModel } from './fixtures.ts';
import { vmRssMiB } from './vm-rss.ts';

const [dir, cyclesArg, warmupArg, everyArg] = process.argv.slice(2);
if (!dir || !cyclesArg || !warmupArg || !everyArg) throw new Error('usage: leak-cycles.ts FIXTURE_DIR CYCLES WARMUP SAMPLE_EVERY');
const [cycles, warmup, every] = [Number(cyclesArg), Number(warmupArg), Number(everyArg)];
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

const engine = new Engine();
await engine.loadModel({ name: 'llm', role: 'llm', path: writeTestModel(dir, 'llama', 'q8_0', 512) });
await engine.loadModel({ name: 'emb', role: 'embedder', path: writeTestModel(dir, 'bert-mean') });

/** A bounded set of prompts: the prefix cache reaches its steady state during the warm-up. */
const PROMPTS = Array.from({ length: 16 }, (_, k) => `prompt ${k}: ${'word '.repeat(k % 8)}`);

async function cycle(i: number): Promise<void> {
  const prompt = PROMPTS[i % PROMPTS.length]!;
  const full = await engine.generate('llm', { prompt }, { params: { maxTokens: 8, ignoreEos: true } }).collect();
  if (full.usage.completionTokens !== 8) throw new Error(`cycle ${i}: ${full.usage.completionTokens} tokens`);
  const vectors = await engine.embed('emb', [prompt, `${prompt} again`]);
  if (vectors.length !== 2) throw new Error(`cycle ${i}: ${vectors.length} embeddings`);
  const ac = new AbortController();
  const cancelled = engine.generate('llm', { prompt }, { params: { maxTokens: 200, ignoreEos: true }, signal: ac.signal });
  for await (const _ of cancelled) ac.abort();
  const abandoned = engine.generate('llm', { prompt }, { params: { maxTokens: 200, ignoreEos: true } });
  for await (const _ of abandoned) break;
  for (const g of [cancelled, abandoned]) {
    const r = await g.result;
    if (r.finishReason !== 'cancelled') throw new Error(`cycle ${i}: finish reason ${r.finishReason}`);
  }
}

function sample(done: number): void {
  gc!();
  gc!();
  const m = process.memoryUsage();
  const mib = (b: number) => Math.round((b / 2 ** 20) * 100) / 100;
  process.stdout.write(`${JSON.stringify({ cycle: done, rssMiB: Math.round(vmRssMiB('self') * 100) / 100, heapMiB: mib(m.heapUsed), externalMiB: mib(m.external) })}\n`);
}

const PARALLEL = 4;
for (let done = 0; done < cycles; done += PARALLEL) {
  await Promise.all(Array.from({ length: PARALLEL }, (_, k) => cycle(done + k)));
  const now = done + PARALLEL;
  if (now === warmup || (now > warmup && (now - warmup) % every === 0)) sample(now);
}
for (const m of engine.listModels()) engine.unloadModel(m.name);
