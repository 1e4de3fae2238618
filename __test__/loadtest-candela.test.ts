/**
 * One short real run of every `candela loadtest` scenario against Candela
 * on tiny generated models (RAG included), scaled down to seconds; and the
 * --openai mode against Candela's own OpenAI-compatible routes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { writeTestModel } from './helpers/fixtures.ts';
import type { RunningServer } from '../src/bootstrap.ts';
import type { jsonReport } from '../src/cli/loadtest/report-json.ts';
import { SCENARIOS } from '../src/cli/loadtest/scenarios.ts';
import { CLI, tempDir } from './helpers/paths.ts';
import { startTinyServer, tinyRagModels } from './helpers/tiny-server.ts';

const execFileP = promisify(execFile);
type Report = ReturnType<typeof jsonReport>;

let server: RunningServer;

before(async () => {
  const dir = tempDir();
  server = await startTinyServer(tinyRagModels(dir));
  const docs = ['Candela cancels a generation when the client goes.', 'The semantic cache answers repeated questions.', 'Rate limits answer 429.'];
  const res = await fetch(`${server.url}/v1/documents`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ documents: docs.map((text, i) => ({ id: `d${i}`, title: `Doc ${i}`, text })) }),
  });
  assert.equal(res.status, 201);
});
after(async () => {
  await server.close();
});

async function loadtest(...args: string[]): Promise<Report> {
  return loadtestAt(server.url, ...args);
}

async function loadtestAt(url: string, ...args: string[]): Promise<Report> {
  const json = path.join(tempDir(), 'report.json');
  const { stdout } = await execFileP(CLI, ['loadtest', '--url', url, '--quiet', '--json', json, ...args], { encoding: 'utf8', timeout: 120_000 });
  assert.match(stdout, /p50/);
  return JSON.parse(readFileSync(json, 'utf8')) as Report;
}

describe('loadtest against Candela (tiny models)', () => {
  it('runs every scenario without errors', async () => {
    const r = await loadtest('--scenario', 'all', '--scale', '0.02', '--max-tokens', '8', '--price-per-hour', '0.5', '--slo', 'e2e_ms=60000');
    assert.deepEqual(
      r.scenarios.map((s) => s.scenario),
      SCENARIOS.map((s) => s.name),
    );
    for (const s of r.scenarios) {
      assert.ok(s.requests > 0, `${s.scenario}: no requests`);
      assert.deepEqual(s.errors, {}, `${s.scenario}: errors`);
      assert.equal(s.successes, s.requests);
      assert.ok(s.e2e_ms && s.e2e_ms.p50 > 0, s.scenario);
    }
    const by = (n: string) => r.scenarios.find((s) => s.scenario === n)!;
    // Streaming scenarios have TTFT and tokens; the others do not stream.
    for (const n of ['generate', 'sustained', 'spike', 'ramp', 'north-south', 'cache-phases', 'soak']) {
      assert.ok(by(n).ttft_ms, `${n}: ttft`);
      assert.ok(by(n).output_tokens > 0, `${n}: tokens`);
    }
    for (const n of ['health', 'tokenize', 'batch-tokenize', 'batch-generate']) assert.equal(by(n).ttft_ms, null, n);
    assert.ok(by('batch-generate').output_tokens > 0, 'batch usage summed');
    // A fresh cache: the cold questions miss, their exact repeats hit.
    const phases = by('cache-phases').phases;
    assert.deepEqual(
      phases.map((p) => p.name),
      ['cold', 'new', 'exact-repeat', 'paraphrase'],
    );
    assert.equal(phases[0]!.cache?.hit_rate, 0);
    assert.equal(phases[2]!.cache?.hit_rate, 1);
    assert.equal(by('north-south').cache?.hit_rate, 0, 'north-south skips the cache');
    const soak = by('soak').soak!;
    assert.ok(soak.rss_start_bytes! > 0 && soak.rss_end_bytes! > 0, 'RSS from /metrics');
    assert.ok(by('generate').goodput, 'goodput with --slo');
    assert.equal(r.scorecard?.configured.source, 'server');
    assert.ok(r.scorecard?.rows.some((row) => row.cost_per_1k_output_tokens !== null));
  });

  it('--openai drives Candela through its OpenAI-compatible routes', async () => {
    const r = await loadtest('--openai', '--scenario', 'health,generate,north-south', '--scale', '0.02', '--max-tokens', '4');
    assert.equal(r.target, 'openai');
    assert.equal(r.model, 'tiny', 'the first model /v1/models lists');
    for (const s of r.scenarios) {
      assert.deepEqual(s.errors, {}, s.scenario);
      assert.ok(s.requests > 0);
    }
    assert.ok(r.scenarios.find((s) => s.scenario === 'generate')!.ttft_ms);
  });

  it('--peer gives an OpenAI-compatible server the same load in the same run', async () => {
    const r = await loadtest('--scenario', 'tokenize,generate', '--scale', '0.1', '--max-tokens', '4', '--peer', server.url);
    assert.deepEqual(
      r.scenarios.map((s) => [s.scenario, s.target]),
      [
        ['tokenize', 'candela'],
        ['generate', 'candela'],
      ],
    );
    // The peer runs only what an OpenAI-compatible server can answer.
    const peer = r.peers?.[0];
    assert.equal(peer?.model, 'tiny');
    assert.deepEqual(
      peer?.scenarios.map((s) => [s.scenario, s.target, s.errors]),
      [['generate', 'openai', {}]],
    );
  });

  it('counts Candela’s rate-limit refusals as 429s', async () => {
    const limited = await startTinyServer([{ name: 'tiny', role: 'llm', path: writeTestModel(tempDir(), 'llama', 'q8_0') }], { rateLimitIpRpm: 4 });
    try {
      // 10 tokenize requests against 4 a minute: 4 answered, 6 refused.
      const r = await loadtestAt(limited.url, '--scenario', 'tokenize', '--scale', '0.2');
      const s = r.scenarios[0]!;
      assert.equal(s.successes, 4);
      assert.deepEqual(s.errors, { '429': 6 });
      assert.deepEqual(s.error_classes, { rate_limited: 6 });
    } finally {
      await limited.close();
    }
  });
});
