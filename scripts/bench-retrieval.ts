/**
 * Retrieval benchmark (a script that prints numbers, not a test).
 *
 *   npm run bench:retrieval -- [--chunks 100000] [--queries 300] [--top-k 20] [--skip-ingest]
 *
 * 1. Index: `--chunks` random unit 384-d vectors (plus synthetic Zipf-worded
 *    text for BM25, 120 words a chunk, stop words left out as the analyzer
 *    would) in the document chunk index; insert rate.
 * 2. Search, top-k: dense on the event loop (sync, the cost a caller would
 *    block for) and on the thread pool (what retrieval uses at this size),
 *    BM25, and the whole hybrid path (dense + BM25 + RRF); p50 / p95 in ms,
 *    with the event-loop delay (perf_hooks) while the async searches run.
 * 3. Ingestion through the real embedder: the answer-eval corpus (docs that
 *    ship in pinned npm packages) chunked, embedded with all-MiniLM-L6-v2,
 *    stored and indexed by the document service; chunks/s.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.ts';
import { Engine } from '../src/engine/index.ts';
import { loadEvalSet, readCorpus } from '../src/eval/answer-eval.ts';
import { FileDocumentStore } from '../src/services/document-store-file.ts';
import { DocumentService } from '../src/services/documents.ts';
import { ChunkIndex } from '../src/services/retrieval/chunk-index.ts';
import { reciprocalRankFusion } from '../src/services/retrieval/rrf.ts';

const { values } = parseArgs({
  options: {
    chunks: { type: 'string', default: '100000' },
    queries: { type: 'string', default: '300' },
    'top-k': { type: 'string', default: '20' },
    'skip-ingest': { type: 'boolean', default: false },
  },
});
const N = Number(values.chunks);
const QUERIES = Number(values.queries);
const K = Number(values['top-k']);
const DIM = 384;
const CHUNKS_PER_DOC = 8;
const out = (s: string) => process.stdout.write(`${s}\n`);
const pct = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))]!;
const fmt = (ms: number[]) => `p50 ${pct(ms, 0.5).toFixed(3).padStart(7)} ms   p95 ${pct(ms, 0.95).toFixed(3).padStart(7)} ms`;

// Deterministic, so runs compare.
let seed = 42;
const rand = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32;
};
function unit(): Float32Array {
  const v = new Float32Array(DIM);
  let n = 0;
  for (let i = 0; i < DIM; i++) n += (v[i] = rand() - 0.5) ** 2;
  n = Math.sqrt(n);
  for (let i = 0; i < DIM; i++) v[i]! /= n;
  return v;
}
// Words drawn with Zipf's law (rank r has probability ∝ 1/r), like natural text, from rank 80 on: the
// ~80 most frequent English words are the analyzer's stop words, which never reach the index.
const VOCAB = 20_000;
const FIRST_RANK = 80;
const cdf: number[] = [];
for (let r = FIRST_RANK, s = 0; r < FIRST_RANK + VOCAB; r++) cdf.push((s += 1 / r));
const word = () => {
  const x = rand() * cdf[VOCAB - 1]!;
  let lo = 0;
  let hi = VOCAB - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return `w${lo.toString(36)}`;
};
const sentence = (n: number) => Array.from({ length: n }, word).join(' ');

out(`# retrieval benchmark: ${N} chunks, ${DIM}-d, top-${K}, ${QUERIES} queries; ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load ${os.loadavg()[0]!.toFixed(2)}`);

// 1. Index.
const index = new ChunkIndex();
const docs: { text: string; embedding: Float32Array }[][] = [];
for (let d = 0; d * CHUNKS_PER_DOC < N; d++) {
  docs.push(Array.from({ length: Math.min(CHUNKS_PER_DOC, N - d * CHUNKS_PER_DOC) }, () => ({ text: sentence(120), embedding: unit() })));
}
let t = performance.now();
docs.forEach((chunks, d) => index.set(`doc-${d}`, chunks));
const insertMs = performance.now() - t;
out(`index: ${index.size} chunks in ${(insertMs / 1000).toFixed(2)} s = ${Math.round(index.size / (insertMs / 1000))} chunks/s (native dense + BM25, embedding excluded)`);

// 2. Search.
const queries = Array.from({ length: QUERIES }, () => ({ vector: unit(), text: sentence(6) }));
const time = async (fn: (q: (typeof queries)[number]) => unknown) => {
  const ms: number[] = [];
  for (const q of queries.slice(0, 10)) await fn(q); // warm-up
  for (const q of queries) {
    const t0 = performance.now();
    await fn(q);
    ms.push(performance.now() - t0);
  }
  return ms;
};
// The sync scan, as the event loop would pay for it: reach the native index through a private-free path.
const { VectorIndex } = await import('../src/engine/index.ts');
const plain = new VectorIndex(DIM);
docs.forEach((chunks, d) => chunks.forEach((c, i) => plain.upsert('documents', `doc-${d}:${i}`, c.embedding)));
out(`dense, sync (on the event loop):   ${fmt(await time((q) => plain.search('documents', q.vector, K)))}`);
const h = monitorEventLoopDelay({ resolution: 1 });
h.enable();
const ticker = setInterval(() => {}, 1);
const dense = await time((q) => index.searchDense(q.vector, K));
clearInterval(ticker);
h.disable();
out(`dense, thread pool (retrieval):    ${fmt(dense)}`);
out(`  event-loop delay meanwhile: p50 ${(h.percentile(50) / 1e6).toFixed(2)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(2)} ms, max ${(h.max / 1e6).toFixed(2)} ms`);
out(`bm25 (6-word queries):             ${fmt(await time((q) => index.searchText(q.text, K)))}`);
const depth = Math.max(K, 50);
const hybrid = await time(async (q) => {
  const [d, b] = [await index.searchDense(q.vector, depth), index.searchText(q.text, depth)];
  return reciprocalRankFusion([d.map((x) => `${x.docId}:${x.chunk}`), b.map((x) => `${x.docId}:${x.chunk}`)]).slice(0, K);
});
out(`hybrid (dense + bm25 + rrf, ${depth} each): ${fmt(hybrid)}`);

// 3. Ingestion through the real embedder.
if (!values['skip-ingest']) {
  const config = loadConfig();
  const modelDir = path.join(config.modelsDir, 'all-minilm-l6-v2');
  const engine = new Engine();
  await engine.loadModel({ name: 'all-minilm-l6-v2', role: 'embedder', path: modelDir });
  const set = loadEvalSet(path.join(import.meta.dirname, '..', 'eval', 'answers', 'questions.json'));
  const corpus = readCorpus(set, path.join(import.meta.dirname, '..', 'node_modules'));
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'candela-bench-retrieval-'));
  const service = new DocumentService({ engine, store: new FileDocumentStore(dataDir), embedder: 'all-minilm-l6-v2', chunkTokens: config.chunkTokens, overlapTokens: config.chunkOverlapTokens });
  await service.open();
  t = performance.now();
  let chunks = 0;
  let chars = 0;
  for (const d of corpus) {
    const s = await service.add({ id: d.id, title: d.title, text: d.text });
    chunks += s.chunks;
    chars += s.characters;
  }
  const s = (performance.now() - t) / 1000;
  out(`ingestion (all-minilm-l6-v2, ${corpus.length} package docs, ${(chars / 1024).toFixed(0)} KiB, ${config.chunkTokens}-token chunks): ${chunks} chunks in ${s.toFixed(2)} s = ${(chunks / s).toFixed(1)} chunks/s (chunk, embed, fsync'd store, index)`);
  rmSync(dataDir, { recursive: true, force: true });
}
