/**
 * Soak: 200 concurrent clients for 60 s against a real server process on the
 * tiny RAG models (loopback only), across generate, embed, query, streams
 * (some clients hang up mid-stream on purpose) and documents. Every answer
 * must be 2xx, or 429/503 with `Retry-After`; nothing else, and no socket
 * error the test did not cause. `/health` must keep answering while the load
 * runs; once the load is over, the server's resident memory (VmRSS from
 * /proc) must be within a stated bound of its value before the load and its
 * V8 heap (used, after GC) back where it was, and its engine idle.
 *
 * The load comes from the load tester's own client and closed loop
 * (`src/cli/loadtest`), bounded by a request count and a duration.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { runArrivals } from '../src/cli/loadtest/arrivals.ts';
import { createClient, type LoadClient, type RequestSpec, type Sample } from '../src/cli/loadtest/client.ts';
import { ROOT, tempDir } from './helpers/paths.ts';
import { vmRssMiB } from './helpers/vm-rss.ts';

const USERS = 200;
const DURATION_S = 60;
/** Hard cap on requests started, far above what 60 s can start on two cores: the duration ends the run. */
const MAX_REQUESTS = 200_000;
/** Per-request client timeout; a request still running past it is a failure (`timeout`). */
const REQUEST_TIMEOUT_MS = 30_000;
/**
 * /health during the load: every probe answers 200 within HEALTH_MAX_MS and
 * half of them within HEALTH_P50_MS. Measured with the test at nice 19 on
 * the shared 2-core machine: p50 130–320 ms, max 0.6–2.0 s (the event loop
 * shares two cores with 200 clients, the engine's pool and other jobs).
 */
const HEALTH_MAX_MS = 5_000;
const HEALTH_P50_MS = 1_000;
/**
 * Bound on the server's RSS after the load settles, above its value before
 * the load, in MiB. A burst of 200 clients lifts RSS once and it stays at
 * that plateau: V8 grows its committed heap under the allocation rate
 * (heapTotal 160–170 MiB with 20 MiB used) and keeps the pages pooled after
 * GC, and glibc keeps its arenas. Measured on the 2-core machine: +131 to
 * +196 MiB over seven runs of this test; eight rounds of 10 s of generation
 * at 200 clients gave 137 → 201 → 213 → 265 MiB and then 264–265 MiB for
 * the five rounds after (heap used flat at 20–26 MiB). So RSS gets a
 * plateau-sized bound, and the leak signal is the V8 heap used after GC,
 * which must come back within HEAP_BOUND_MIB (measured −3 to +4 MiB). Tried
 * with deliberate leaks in the server: ~3 KiB kept per request gave +35 MiB
 * and failed; ~0.8 KiB per request gave +9 MiB and passed: smaller leaks
 * than about 1.5 KiB per request are below what this test can see.
 * Native leaks are the leak test's job (leak.test.ts), where RSS is quiet.
 */
const RSS_BOUND_MIB = 256;
const HEAP_BOUND_MIB = 16;

interface Server {
  url: string;
  child: ChildProcess;
}

let server: Server;
let client: LoadClient;

/** Starts serve-tiny-rag.ts as a child (with --expose-gc and IPC) and waits for its URL. */
async function startServer(): Promise<Server> {
  const script = path.join(ROOT, '__test__', 'helpers', 'serve-tiny-rag.ts');
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', '--expose-gc', script, tempDir('candela-soak-data-'), tempDir('candela-soak-models-')], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    env: { ...process.env, CANDELA_LOG_LEVEL: 'silent' },
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the soak server did not start within 120 s')), 120_000);
    child.stdout!.once('data', (b: Buffer) => {
      clearTimeout(timer);
      resolve(b.toString().trim());
    });
    child.once('exit', (code) => reject(new Error(`the soak server exited (${code}) before it was ready`)));
  });
  return { url, child };
}


/** Asks the server to collect garbage; resolves with its memoryUsage(). */
function collect(child: ChildProcess): Promise<NodeJS.MemoryUsage> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as NodeJS.MemoryUsage));
    child.send('gc');
  });
}

/** Settled memory: idle for a moment, garbage collected, then the lowest of a few VmRSS reads. */
async function settledMemory(child: ChildProcess): Promise<{ rssMiB: number; heapMiB: number; heapTotalMiB: number }> {
  await sleep(2_000);
  const mem = await collect(child);
  let rss = Number.POSITIVE_INFINITY;
  for (let k = 0; k < 5; k++) {
    rss = Math.min(rss, vmRssMiB(child.pid!));
    await sleep(200);
  }
  return { rssMiB: rss, heapMiB: mem.heapUsed / 2 ** 20, heapTotalMiB: mem.heapTotal / 2 ** 20 };
}

const PROMPTS = [
  'Why is the sky blue?',
  'Name three prime numbers.',
  'What does Candela do?',
  'How is a generation cancelled?',
  'Explain continuous batching.',
  'What is a semantic cache?',
  'Write a haiku about rust.',
  'What is the capital of France?',
  'Summarise the documents.',
  'How are API keys stored?',
];
const DOCS = [
  // Short: the tiny LLM's window (1024 byte-level tokens) holds the RAG prompt with two of them.
  'Candela serves LLMs and embedders.',
  'The cache answers repeated questions.',
  'A client that leaves cancels its generation.',
  'The breaker guards a rolling budget.',
];
const prompt = (i: number) => PROMPTS[i % PROMPTS.length]!;

/** What one request of the mix is, by its index: 20 slots, so the shares are in twentieths. */
type Kind = 'generate' | 'embed' | 'query' | 'stream' | 'query-stream' | 'hang-up' | 'documents';
function kindOf(i: number): Kind {
  const slot = i % 20;
  if (slot < 4) return 'generate'; // 20 %
  if (slot < 7) return 'embed'; // 15 %
  if (slot < 10) return 'query'; // 15 %
  if (slot < 13) return 'stream'; // 15 %
  if (slot < 14) return 'query-stream'; // 5 %
  if (slot < 17) return 'hang-up'; // 15 %: streams the client abandons mid-way
  return 'documents'; // 15 %: add, read back, delete
}

function specsOf(kind: Kind, i: number): RequestSpec[] {
  switch (kind) {
    case 'generate':
      return [{ method: 'POST', path: '/v1/generate', kind: 'json', body: { prompt: prompt(i), max_tokens: 16 } }];
    case 'embed':
      return [{ method: 'POST', path: '/v1/embeddings', kind: 'json', body: { input: [prompt(i), prompt(i + 1)] } }];
    case 'query':
      // Half cached, half not: both the cache's path and the full RAG path stay busy.
      return [{ method: 'POST', path: '/v1/query', kind: 'json', body: { query: prompt(i), top_k_rerank: 2, max_tokens: 16, cache: i % 2 === 0 } }];
    case 'stream':
      return [{ method: 'POST', path: '/v1/generate/stream', kind: 'candela-sse', body: { prompt: prompt(i), max_tokens: 24 } }];
    case 'query-stream':
      return [{ method: 'POST', path: '/v1/query/stream', kind: 'candela-sse', body: { query: prompt(i), top_k_rerank: 2, max_tokens: 24, cache: false } }];
    case 'hang-up':
      return [{ method: 'POST', path: '/v1/generate/stream', kind: 'candela-sse', body: { prompt: prompt(i), max_tokens: 400, ignore_eos: true } }];
    case 'documents': {
      const id = `soak-${i}`;
      return [
        { method: 'POST', path: '/v1/documents', kind: 'json', body: { id, title: `soak ${i}`, text: DOCS[i % DOCS.length]! } },
        { method: 'GET', path: `/v1/documents/${id}`, kind: 'json' },
        { method: 'DELETE', path: `/v1/documents/${id}`, kind: 'json' },
      ];
    }
  }
}

/** One answer as the soak judges it. */
interface Outcome {
  kind: Kind;
  path: string;
  sample: Omit<Sample, 'startMs'>;
  /** The client hung up on purpose. */
  deliberate: boolean;
}

/** Why an outcome breaks the contract, or null when it keeps it. */
function violation(o: Outcome): string | null {
  const s = o.sample;
  if (o.deliberate && s.error === 'aborted') return null;
  if (s.error === null && s.status >= 200 && s.status < 300) return null;
  if (s.status === 429 || s.status === 503) return s.retryAfter ? null : `${o.path}: ${s.status} without Retry-After (${s.detail ?? ''})`;
  return `${o.path}: ${s.status} ${s.error ?? ''} ${s.detail ?? ''}`.trim();
}

before(async () => {
  server = await startServer();
  client = createClient({ baseUrl: server.url, timeoutMs: REQUEST_TIMEOUT_MS, connections: USERS + 8 });
  // A small corpus that stays, so queries retrieve something.
  for (const [k, text] of DOCS.entries()) {
    const r = await client.send({ method: 'POST', path: '/v1/documents', kind: 'json', body: { id: `seed-${k}`, text } });
    assert.equal(r.status, 201, `seed document ${k}: ${r.detail ?? ''}`);
  }
});

after(async () => {
  await client?.close();
  if (server && server.child.exitCode === null) {
    server.child.kill('SIGTERM');
    await new Promise((resolve) => server.child.once('exit', resolve));
  }
});

test(`soak: ${USERS} clients for ${DURATION_S} s: only 2xx, 429/503 with Retry-After; /health answers; RSS comes back`, { timeout: 180_000 }, async () => {
  const outcomes: Outcome[] = [];
  /** Documents the load added and did not manage to delete (a 429 before the DELETE). */
  const leftover = new Set<string>();
  const run = async (i: number, signal: AbortSignal) => {
    const kind = kindOf(i);
    for (const spec of specsOf(kind, i)) {
      let hangUp: AbortController | undefined;
      let signalFor = signal;
      if (kind === 'hang-up') {
        // Hang up 20–200 ms in: usually after the first tokens, sometimes before the headers.
        hangUp = new AbortController();
        const t = setTimeout(() => hangUp!.abort(), 20 + ((i * 37) % 180));
        hangUp.signal.addEventListener('abort', () => clearTimeout(t));
        signalFor = AbortSignal.any([signal, hangUp.signal]);
      }
      const sample = await client.send(spec, signalFor);
      hangUp?.abort();
      const deliberate = hangUp !== undefined && sample.error === 'aborted' && !signal.aborted;
      outcomes.push({ kind, path: spec.path.replace(/soak-\d+/, ':id'), sample, deliberate });
      if (kind === 'documents' && spec.method === 'POST' && sample.status === 201) leftover.add(`soak-${i}`);
      if (kind === 'documents' && spec.method === 'DELETE' && sample.status === 200) leftover.delete(`soak-${i}`);
      if (sample.status === 429 || sample.status === 503) {
        // A polite client backs off (Retry-After is whole seconds; a short bounded pause keeps the pressure on).
        await sleep(100 + ((i * 53) % 400), undefined, { signal }).catch(() => undefined);
        break;
      }
      if (sample.error) break;
    }
  };

  // Warm-up: every route once (code paths compiled, models touched).
  await runArrivals({ kind: 'closed', stages: [{ users: 1, durationS: 30 }], requests: 20 }, run, { maxRequests: 20, maxDurationS: 40, graceS: 10 });
  const warm = outcomes.splice(0).map(violation).filter((v) => v !== null);
  assert.deepEqual(warm.slice(0, 10), [], `${warm.length} warm-up answers broke the contract`);
  const before = await settledMemory(server.child);

  // /health probes on their own connection (one every ~0.5 s), and RSS with each, for as long as the load runs.
  const probes: { ms: number; status: number }[] = [];
  let peakRss = before.rssMiB;
  const loadStart = performance.now();
  const stopWatch = new AbortController();
  const healthPool = new Pool(server.url, { connections: 1 });
  const watch = (async () => {
    while (!stopWatch.signal.aborted) {
      const t0 = performance.now();
      let status = 0;
      try {
        const res = await healthPool.request({ method: 'GET', path: '/health', headersTimeout: 10_000, bodyTimeout: 10_000 });
        await res.body.text();
        status = res.statusCode;
      } catch {
        status = 0;
      }
      probes.push({ ms: performance.now() - t0, status });
      peakRss = Math.max(peakRss, vmRssMiB(server.child.pid!));
      await sleep(500, undefined, { signal: stopWatch.signal }).catch(() => undefined);
    }
  })();

  const res = await runArrivals({ kind: 'closed', stages: [{ users: USERS, durationS: DURATION_S }] }, run, {
    maxRequests: MAX_REQUESTS,
    maxDurationS: DURATION_S + REQUEST_TIMEOUT_MS / 1000,
    graceS: REQUEST_TIMEOUT_MS / 1000,
  });
  const loadS = (performance.now() - loadStart) / 1000;
  stopWatch.abort();
  await watch;
  await healthPool.close();
  assert.equal(server.child.exitCode, null, 'the server is still running');
  const afterMem = await settledMemory(server.child);

  // What the run did, by kind and status, for the log (and the closing note).
  const byKind = new Map<string, number>();
  for (const o of outcomes) {
    const k = `${o.kind} ${o.deliberate ? 'hung-up' : o.sample.status}`;
    byKind.set(k, (byKind.get(k) ?? 0) + 1);
  }
  const midStream = outcomes.filter((o) => o.deliberate && o.sample.ttftMs !== null).length;
  const probeMs = probes.map((p) => p.ms).sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      load_s: Math.round(loadS * 10) / 10,
      stopped_by: res.stoppedBy,
      requests: outcomes.length,
      by_kind_status: Object.fromEntries([...byKind].sort()),
      hung_up_mid_stream: midStream,
      health_probes: probes.length,
      health_p50_ms: Math.round(probeMs[Math.floor(probeMs.length / 2)] ?? -1),
      health_max_ms: Math.round(probeMs.at(-1) ?? -1),
      rss_before_mib: Math.round(before.rssMiB),
      rss_peak_mib: Math.round(peakRss),
      rss_after_mib: Math.round(afterMem.rssMiB),
      heap_before_mib: Math.round(before.heapMiB),
      heap_after_mib: Math.round(afterMem.heapMiB),
      heap_committed_after_mib: Math.round(afterMem.heapTotalMiB),
    }),
  );

  const bad = outcomes.map(violation).filter((v): v is string => v !== null);
  const reasons = new Map<string, number>();
  for (const b of bad) reasons.set(b, (reasons.get(b) ?? 0) + 1);
  assert.deepEqual([...reasons].slice(0, 10), [], `${bad.length} answers broke the contract (first kinds above)`);
  assert.equal(res.abortedInFlight, 0, 'no request outlived the run');
  // The load was real: every kind answered 2xx many times, and clients did hang up mid-stream.
  for (const kind of ['generate', 'embed', 'query', 'stream', 'query-stream', 'documents'] as const) {
    const ok = outcomes.filter((o) => o.kind === kind && o.sample.status >= 200 && o.sample.status < 300).length;
    assert.ok(ok >= 20, `${kind}: only ${ok} answers were 2xx`);
  }
  assert.ok(midStream >= 20, `only ${midStream} clients hung up mid-stream`);

  assert.ok(probes.length >= DURATION_S, `only ${probes.length} /health probes ran`);
  const slow = probes.filter((p) => p.status !== 200 || p.ms > HEALTH_MAX_MS);
  assert.deepEqual(slow, [], `every /health probe answered 200 within ${HEALTH_MAX_MS} ms`);
  const p50 = probeMs[Math.floor(probeMs.length / 2)]!;
  assert.ok(p50 <= HEALTH_P50_MS, `/health p50 ${p50.toFixed(0)} ms > ${HEALTH_P50_MS} ms`);

  const rssGrowth = afterMem.rssMiB - before.rssMiB;
  assert.ok(rssGrowth <= RSS_BOUND_MIB, `RSS ${before.rssMiB.toFixed(0)} MiB before the load, ${afterMem.rssMiB.toFixed(0)} MiB after it settled: +${rssGrowth.toFixed(0)} MiB > ${RSS_BOUND_MIB} MiB`);
  const heapGrowth = afterMem.heapMiB - before.heapMiB;
  assert.ok(heapGrowth <= HEAP_BOUND_MIB, `V8 heap used after GC: ${before.heapMiB.toFixed(1)} MiB before the load, ${afterMem.heapMiB.toFixed(1)} MiB after: +${heapGrowth.toFixed(1)} MiB > ${HEAP_BOUND_MIB} MiB`);

  // Nothing is left running or queued in the engine: the abandoned streams were cancelled, not orphaned.
  const stats = (await (await fetch(`${server.url}/health/stats`)).json()) as { models: { name: string; scheduler?: { running: number; waiting: number } }[] };
  for (const m of stats.models) if (m.scheduler) assert.deepEqual({ running: m.scheduler.running, waiting: m.scheduler.waiting }, { running: 0, waiting: 0 }, `${m.name} is idle`);
  assert.ok(stats.models.some((m) => m.scheduler), 'the LLM reports its scheduler');

  // The corpus is what the clients were told: the seeds, plus any document whose DELETE was refused.
  const list = (await (await fetch(`${server.url}/v1/documents`)).json()) as { data: { id: string }[] };
  const expected = [...DOCS.keys()].map((k) => `seed-${k}`).concat([...leftover]);
  assert.deepEqual(list.data.map((d) => d.id).sort(), expected.sort());
});
