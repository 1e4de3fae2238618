/**
 * The OpenAPI document as an exact contract: schemathesis (pinned, installed
 * by scripts/install-schemathesis.sh into .tools/schemathesis) drives a real
 * server on loopback over tiny models from /openapi.json, with every check
 * and a bounded number of cases per operation, once with auth off and once
 * with auth on (a key with every scope, sent as `Authorization: Bearer`).
 * The run must end with zero server errors and zero check failures.
 *
 * Settings and the two allowances an OpenAPI document cannot express are in
 * __test__/fuzz/ (schemathesis.toml, hooks.py). CANDELA_FUZZ_EXAMPLES sets
 * the cases per operation (default 10); CANDELA_FUZZ_SEED the seed (default
 * fixed, so CI is reproducible; `random` for a fresh one).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { API_OPERATIONS } from '../src/http/api-spec.ts';
import { startFuzzServer, type FuzzServer } from './helpers/fuzz-server.ts';
import { ROOT, tempDir } from './helpers/paths.ts';

const BIN = path.join(ROOT, '.tools', 'schemathesis', 'bin', 'schemathesis');
const FUZZ_DIR = path.join(ROOT, '__test__', 'fuzz');
const EXAMPLES = Number(process.env['CANDELA_FUZZ_EXAMPLES'] ?? 10);
const SEED = process.env['CANDELA_FUZZ_SEED'] ?? '20261202';
/** A whole run's limit: far above what it takes (about a minute on two cores), so only a hang trips it. */
const RUN_LIMIT_MS = 240_000;

const required = process.env['CI'] === 'true' || process.env['CANDELA_REQUIRE_MODELS'] === '1';
const missing = existsSync(BIN) ? undefined : `schemathesis is not installed at ${BIN}: run bash scripts/install-schemathesis.sh`;
if (missing && required) throw new Error(missing);

interface RunResult {
  code: number | null;
  output: string;
  seconds: number;
}

function schemathesis(url: string, key: string | undefined): Promise<RunResult> {
  const args = ['--config-file', path.join(FUZZ_DIR, 'schemathesis.toml'), 'run', `${url}/openapi.json`, '--checks', 'all'];
  args.push('--max-examples', String(EXAMPLES), '--workers', '1', '--request-timeout', '30', '--generation-database', 'none', '--no-color');
  args.push('--report-dir', tempDir('candela-fuzz-report-'));
  if (SEED !== 'random') args.push('--seed', SEED);
  if (key) args.push('--header', `Authorization: Bearer ${key}`);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, {
      cwd: tempDir('candela-fuzz-cwd-'),
      env: { ...process.env, SCHEMATHESIS_HOOKS: path.join(FUZZ_DIR, 'hooks.py'), NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_LIMIT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, seconds: (performance.now() - started) / 1000 });
    });
  });
}

/** The numbers of the run's summary. */
function summary(output: string): { tested: number; generated: number; passed: number; filtered: number } {
  const n = (re: RegExp) => Number(re.exec(output)?.[1] ?? NaN);
  const cases = /(\d+) generated, (\d+) passed/.exec(output);
  return {
    tested: n(/Tested: (\d+)/),
    generated: Number(cases?.[1] ?? NaN),
    passed: Number(cases?.[2] ?? NaN),
    filtered: Number(/Filtered: (\d+)/.exec(output)?.[1] ?? 0),
  };
}

describe('OpenAPI contract fuzz (schemathesis, every check)', { skip: missing }, () => {
  const servers: FuzzServer[] = [];
  after(async () => {
    for (const s of servers) await s.server.close();
  });

  for (const auth of [false, true]) {
    it(`auth ${auth ? 'on' : 'off'}: every operation fuzzed, zero server errors, zero check failures`, async (t) => {
      const fuzz = await startFuzzServer({ auth });
      servers.push(fuzz);
      const run = await schemathesis(fuzz.server.url, fuzz.key);
      const s = summary(run.output);
      t.diagnostic(`auth ${auth ? 'on' : 'off'}: ${run.seconds.toFixed(1)} s, ${s.tested} operations, ${s.generated} cases, ${s.filtered} allowances used (hooks.py; seed ${SEED})`);
      // Warnings (e.g. operations that mostly got 404s) do not fail the run, but are worth seeing.
      for (const w of run.output.match(/^ *⚠️ .*$/gmu) ?? []) t.diagnostic(w.trim());
      assert.equal(run.code, 0, `schemathesis found failures or errors (exit ${run.code}):\n${run.output.slice(-12_000)}`);
      assert.equal(s.tested, API_OPERATIONS.length, 'every documented operation was fuzzed');
      assert.ok(s.generated >= API_OPERATIONS.length * 5, `only ${s.generated} cases ran`);
      assert.equal(s.passed, s.generated, 'every case passed');
    });
  }
});
