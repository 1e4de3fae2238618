/**
 * Semantic cache benchmark (a script that prints numbers, not a test).
 *
 *   npm run bench:cache -- [--rounds N] [--sizes 1000,10000,100000]
 *
 * 1. Lookup time in the cache service (in-memory store, native index) with
 *    1k, 10k and 100k entries of 384-d vectors in one scope (the worst case:
 *    a lookup only searches its own scope): exact key, semantic hit, miss.
 *    The peer: a JS loop over every cached vector (how a cache without an
 *    index finds the nearest question), timed on the same vectors.
 *    With --redis URL the same through the Redis store (entries in Redis,
 *    the index in process).
 * 2. Over HTTP, with the default models and the demo corpus: an uncached
 *    RAG answer (the peer: what the cache saves), then exact and semantic
 *    hits on the same questions; p50 / p99 in milliseconds.
 */
import os from 'node:os';
import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { serveModelSpecs } from '../src/cli/serve-command.ts';
import { loadConfig } from '../src/config.ts';
import { startServer } from '../src/bootstrap.ts';
import { MemoryCacheStore } from '../src/services/cache/memory-store.ts';
import { RedisCacheStore } from '../src/services/cache/redis-store.ts';
import type { CacheStore } from '../src/services/cache/store.ts';
import { connectRedis } from '../src/services/redis.ts';
import type { CacheScope } from '../src/services/cache/scope.ts';
import { SemanticCache } from '../src/services/cache/semantic-cache.ts';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '200' }, sizes: { type: 'string', default: '1000,10000,100000' }, redis: { type: 'string' }, 'skip-http': { type: 'boolean', default: false } },
});
const rounds = Number(values.rounds);
const q = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))]!;
const fmt = (ms: number[]) => `p50 ${q(ms, 0.5).toFixed(3).padStart(8)}  p99 ${q(ms, 0.99).toFixed(3).padStart(8)}`;
const out = (s: string) => process.stdout.write(`${s}\n`);

// A deterministic generator, so runs compare.
let seed = 42;
const rand = () => {
  seed = (seed * 1664525 + 1013904223) >>> 0;
  return seed / 2 ** 32 - 0.5;
};
function unit(dim: number): Float32Array {
  const v = new Float32Array(dim);
  let n = 0;
  for (let i = 0; i < dim; i++) n += (v[i] = rand()) ** 2;
  n = Math.sqrt(n);
  for (let i = 0; i < dim; i++) v[i]! /= n;
  return v;
}
function near(v: Float32Array, noise: number): Float32Array {
  const w = v.map((x) => x + rand() * noise);
  const n = Math.hypot(...w);
  return w.map((x) => x / n);
}

/** The linear scan a cache without an index does: every vector, every lookup. */
function jsScan(vectors: Float32Array[], query: Float32Array): number {
  let best = -1;
  for (const v of vectors) {
    let s = 0;
    for (let i = 0; i < v.length; i++) s += v[i]! * query[i]!;
    if (s > best) best = s;
  }
  return best;
}

const scope: CacheScope = { kind: 'rag', model: 'm', params: {}, system: '', retrieval: {}, corpus: 'c', tenant: 't' };
const logger = pino({ level: 'silent' });

async function lookups(label: string, makeStore: (size: number) => Promise<CacheStore>, withPeer: boolean): Promise<void> {
  out(`\n1${label}. Cache lookup, 384-d, one scope (the worst case: a lookup searches only its scope), ${rounds} lookups; milliseconds`);
  out(`   ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'})`);
  for (const size of values.sizes.split(',').map(Number)) {
    const store = await makeStore(size);
    const cache = new SemanticCache({ store, threshold: 0.92, ttlS: 86_400, logger });
    const vectors: Float32Array[] = [];
    let t = performance.now();
    for (let i = 0; i < size; i++) {
      const v = unit(384);
      vectors.push(v);
      await cache.put(scope, `question number ${i}`, v, { answer: `answer ${i}` });
    }
    const fillS = (performance.now() - t) / 1000;
    const exact: number[] = [];
    const semantic: number[] = [];
    const miss: number[] = [];
    const peer: number[] = [];
    let hits = 0;
    for (let r = 0; r < rounds; r++) {
      const i = Math.floor((r * 7919) % size);
      t = performance.now();
      if (await cache.exact(scope, `Question number ${i}?`)) hits++;
      exact.push(performance.now() - t);
      const probe = near(vectors[i]!, 0.01);
      t = performance.now();
      if (await cache.semantic(scope, `question number ${i} reworded`, probe)) hits++;
      semantic.push(performance.now() - t);
      t = performance.now();
      if (await cache.semantic(scope, 'something else entirely', unit(384))) hits++;
      miss.push(performance.now() - t);
      if (withPeer && r < Math.max(20, rounds / 10)) {
        t = performance.now();
        jsScan(vectors, probe);
        peer.push(performance.now() - t);
      }
    }
    out(`   ${String(size).padStart(7)} entries (filled in ${fillS.toFixed(1)} s)  exact ${fmt(exact)}   semantic ${fmt(semantic)}   miss ${fmt(miss)}   hits ${hits}/${2 * rounds}`);
    if (withPeer) out(`           JS linear scan (peer)       ${fmt(peer)}   semantic speed-up p50 ${(q(peer, 0.5) / q(semantic, 0.5)).toFixed(1)}x`);
    await cache.flush();
    await cache.close();
  }
}

await lookups('a', (size) => Promise.resolve(new MemoryCacheStore({ maxEntries: size })), true);
if (values.redis) {
  const redis = connectRedis(values.redis, logger, 'bench');
  await lookups(
    'b',
    async (size) => {
      const store = new RedisCacheStore({ redis, prefix: 'candela-bench:', maxEntries: size, logger });
      await store.ready;
      return store;
    },
    false,
  );
  redis.disconnect();
}
if (values['skip-http']) process.exit(0);

out('\n2. Over HTTP: default models, demo corpus; milliseconds');
const base = loadConfig();
const config = Object.freeze({ ...base, port: 0, dataDir: mkdtempSync(path.join(os.tmpdir(), 'candela-bench-')), demoCorpus: true, budget: 0 });
const server = await startServer({ config, models: serveModelSpecs(config), logger });
await server.loaded;
const ask = async (query: string) => {
  const t = performance.now();
  const r = await fetch(`${server.url}/v1/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, max_tokens: 32 }) });
  if (!r.ok) throw new Error(`${r.status} ${await r.text()}`);
  await r.json();
  return { ms: performance.now() - t, kind: r.headers.get('x-cache') };
};
const questions: [string, string][] = [
  ['How does Candela cancel a generation?', 'How does Candela cancel generation?'],
  ['Which models does Candela serve by default?', 'What models does Candela serve by default?'],
  ['How do I run the tests?', 'How can I run the tests?'],
  ['What does the semantic cache store?', 'What does the semantic cache keep?'],
];
const missMs: number[] = [];
for (const [qq] of questions) {
  const r = await ask(qq);
  if (r.kind !== 'miss') throw new Error(`expected a miss, got ${r.kind}`);
  missMs.push(r.ms);
}
const exactMs: number[] = [];
const semanticMs: number[] = [];
const kinds: Record<string, number> = {};
for (let r = 0; r < rounds; r++) {
  const [qq, para] = questions[r % questions.length]!;
  const e = await ask(qq.toLowerCase());
  exactMs.push(e.ms);
  const s = await ask(para);
  semanticMs.push(s.ms);
  for (const k of [e.kind, s.kind]) kinds[k ?? '?'] = (kinds[k ?? '?'] ?? 0) + 1;
}
out(`   uncached answer (default LLM, 32 tokens) p50 ${q(missMs, 0.5).toFixed(0).padStart(8)}  (${missMs.length} questions)`);
out(`   exact hit                               ${fmt(exactMs)}`);
out(`   semantic hit (paraphrase)               ${fmt(semanticMs)}`);
out(`   outcomes: ${JSON.stringify(kinds)}`);
out(`   speed-up vs uncached, p50: exact ${(q(missMs, 0.5) / q(exactMs, 0.5)).toFixed(0)}x, semantic ${(q(missMs, 0.5) / q(semanticMs, 0.5)).toFixed(0)}x`);
await server.close();
