/**
 * Tiny random-weight models for the tests, written by the `candela-fixtures`
 * command of the dev-only `native/testkit` crate (the shipped addon has no
 * fixture code). `npm test` builds it once and sets CANDELA_FIXTURES_BIN;
 * a test file run on its own builds it here (cargo: quick when up to date).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './paths.ts';

let bin: string | undefined = process.env['CANDELA_FIXTURES_BIN'] || undefined;

function fixturesBin(): string {
  if (bin) return bin;
  const host = /^host: (\S+)$/m.exec(execFileSync('rustc', ['-vV'], { encoding: 'utf8' }))?.[1];
  if (!host) throw new Error('cannot tell the Rust host triple from `rustc -vV`');
  // Target, profile and whole-workspace feature resolution as `cargo test --workspace`
  // (which builds it too), so candle's compiled crates are reused, not rebuilt.
  execFileSync('cargo', ['build', '--release', '--quiet', '--target', host, '--workspace', '--bins'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  bin = path.join(ROOT, 'target', host, 'release', 'candela-fixtures');
  return bin;
}

/** The kinds of tiny model: GGUF LLMs (qwen2, llama) and BERT directories. */
export type TestModelKind = 'qwen2' | 'llama' | 'bert-cls' | 'bert-mean' | 'cross-encoder';

/** Writes a tiny random-weight model into `dir` (LLMs: `dtype`, `contextLength` positions); returns its path. */
export function writeTestModel(dir: string, kind: TestModelKind, dtype: 'f32' | 'q8_0' | 'q4_0' = 'q8_0', contextLength?: number): string {
  return execFileSync(fixturesBin(), [dir, kind, dtype, String(contextLength ?? 0)], { encoding: 'utf8' }).trim();
}
