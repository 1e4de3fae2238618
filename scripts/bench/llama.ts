/**
 * llama.cpp as the benchmark's peer: `llama-bench` for prefill and decode on
 * the same GGUF and thread count, `llama-server` for serving. llama.cpp is
 * built outside this repository (see the README's Benchmark section) and
 * found through LLAMA_CPP_DIR.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

/** A binary of the llama.cpp build in `dir` (its bin/ or the folder itself). */
export function llamaBinary(dir: string | undefined, name: string): string | undefined {
  if (!dir) return undefined;
  return [path.join(dir, 'bin', name), path.join(dir, name)].find((p) => existsSync(p));
}

export interface LlamaBench {
  prefill: number;
  decode: number;
  commit: string;
  cpu: string;
}

/** One llama-bench run: pp`prompt` and tg`gen`, `reps` repetitions each (its mean). */
export function runLlamaBench(bin: string, gguf: string, threads: number, prompt: number, gen: number, reps: number): LlamaBench {
  const r = spawnSync(bin, ['-m', gguf, '-t', String(threads), '-p', String(prompt), '-n', String(gen), '-r', String(reps), '-o', 'json'], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) throw new Error(`llama-bench failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const out = JSON.parse(r.stdout) as { n_prompt: number; n_gen: number; avg_ts: number; build_commit?: string; cpu_info?: string }[];
  const pp = out.find((o) => o.n_prompt > 0 && o.n_gen === 0);
  const tg = out.find((o) => o.n_gen > 0 && o.n_prompt === 0);
  if (!pp || !tg) throw new Error('llama-bench printed no pp/tg rows');
  return { prefill: pp.avg_ts, decode: tg.avg_ts, commit: out[0]?.build_commit ?? '?', cpu: out[0]?.cpu_info ?? '?' };
}

/** The build's configuration flags that matter for a CPU comparison. */
export function llamaBuildFlags(dir: string): string {
  for (const f of [path.join(dir, 'CMakeCache.txt'), path.join(dir, '..', 'build', 'CMakeCache.txt')]) {
    if (!existsSync(f)) continue;
    const r = spawnSync('grep', ['-E', '^(GGML_NATIVE|GGML_LLAMAFILE|GGML_AVX2|GGML_AVX512|CMAKE_BUILD_TYPE|GGML_OPENMP):', f], { encoding: 'utf8' });
    return r.stdout.trim().split('\n').join(' ');
  }
  return 'unknown';
}
