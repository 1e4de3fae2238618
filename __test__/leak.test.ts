/**
 * Leaks: thousands of generate / embed / cancel cycles through the engine
 * API on tiny models, in a child process (helpers/leak-cycles.ts) so its
 * memory is its own. Memory is sampled after a warm-up (the prefix cache,
 * the JIT and the allocator reach their steady state there) and then every
 * few hundred cycles, each time after a forced GC; growth from the warm-up
 * to the end must stay within the bounds below.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ROOT, tempDir } from './helpers/paths.ts';

const CYCLES = 3000;
const WARMUP = 400;
const SAMPLE_EVERY = 260;
/**
 * The V8 heap after GC may grow by at most 1 MiB over the 2,600 measured
 * cycles: a JS object of ~400 bytes kept per cycle (one result, one
 * Float32Array's wrapper) breaks it. Measured: +0.04 to +0.12 MiB.
 */
const HEAP_BOUND_MIB = 1;
/** External (ArrayBuffer) memory, where embeddings live: same bound, same reason. Measured: +0.00 MiB. */
const EXTERNAL_BOUND_MIB = 1;
/**
 * Resident memory may grow by at most 32 MiB. glibc takes memory in steps
 * (a new arena for a thread is one ~10 MiB step, seen once in each run on
 * the 2-core machine: +10.4 to +12.8 MiB in all), so RSS cannot hold the heap's tight
 * bound; what it catches is a native leak of ~13 KiB or more per cycle, such
 * as a sequence's KV cache or an embedding batch never freed.
 */
const RSS_BOUND_MIB = 32;

interface MemorySample {
  cycle: number;
  rssMiB: number;
  heapMiB: number;
  externalMiB: number;
}

test(`leaks: ${CYCLES} generate/embed/cancel cycles keep memory within bounds`, { timeout: 300_000 }, async () => {
  const script = path.join(ROOT, '__test__', 'helpers', 'leak-cycles.ts');
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--disable-warning=ExperimentalWarning', '--expose-gc', script, tempDir('candela-leak-'), String(CYCLES), String(WARMUP), String(SAMPLE_EVERY)],
    { maxBuffer: 1 << 20, timeout: 280_000 },
  );
  const samples = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as MemorySample);
  console.log(JSON.stringify(samples));
  assert.equal(samples[0]?.cycle, WARMUP, 'a sample right after the warm-up');
  assert.equal(samples.at(-1)?.cycle, CYCLES, 'every cycle ran');
  const first = samples[0];
  const last = samples.at(-1)!;
  const grew = (k: keyof MemorySample) => last[k] - first[k];
  assert.ok(grew('heapMiB') <= HEAP_BOUND_MIB, `V8 heap grew ${grew('heapMiB').toFixed(2)} MiB (> ${HEAP_BOUND_MIB}): ${first.heapMiB} → ${last.heapMiB}`);
  assert.ok(grew('externalMiB') <= EXTERNAL_BOUND_MIB, `external memory grew ${grew('externalMiB').toFixed(2)} MiB (> ${EXTERNAL_BOUND_MIB})`);
  assert.ok(grew('rssMiB') <= RSS_BOUND_MIB, `RSS grew ${grew('rssMiB').toFixed(1)} MiB (> ${RSS_BOUND_MIB}): ${first.rssMiB} → ${last.rssMiB}`);
});
