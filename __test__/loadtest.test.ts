/**
 * `candela loadtest` against a real HTTP server with known behaviour: the
 * client-measured TTFT/TPOT/ITL/E2E and their percentiles match the injected
 * delays, open-loop arrivals keep their rate and cap, a spike produces its
 * steps, errors are counted by class, runs stop on their bounds, and the
 * reports and command line behave.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config.ts';
import { loadtestCommand } from '../src/cli/loadtest-command.ts';
import { UsageError } from '../src/cli/usage.ts';
import type { Arrival } from '../src/cli/loadtest/arrivals.ts';
import { usersAt } from '../src/cli/loadtest/arrivals.ts';
import { createClient, type BodyKind, type LoadClient } from '../src/cli/loadtest/client.ts';
import { defaultQuestions, loadQuestions } from '../src/cli/loadtest/questions.ts';
import { meanBetween, readScrape } from '../src/cli/loadtest/prometheus.ts';
import { htmlReport } from '../src/cli/loadtest/report-html.ts';
import { jsonReport } from '../src/cli/loadtest/report-json.ts';
import { runScenario, type ScenarioResult } from '../src/cli/loadtest/run.ts';
import type { Scenario, ScenarioContext } from '../src/cli/loadtest/scenarios.ts';
import { scorecard } from '../src/cli/loadtest/scorecard.ts';
import { percentile, sliceWidthS, timeline, type Slo } from '../src/cli/loadtest/stats.ts';
import type { Arrival as ServerArrival } from './helpers/fake-llm-server.ts';
import { CLI, ROOT, tempDir } from './helpers/paths.ts';

const execFileP = promisify(execFile);
/** The fake server, in its own process so this one's event loop cannot delay its timers. */
let fake: { url: string; child: ChildProcess };
/** What the fake server saw, from request `from` on. */
async function arrivals(from = 0): Promise<ServerArrival[]> {
  const all = (await (await fetch(`${fake.url}/_arrivals`)).json()) as ServerArrival[];
  return all.slice(from).filter((a) => a.path !== '/_arrivals');
}
const arrivalCount = async () => (await arrivals()).length;
let client: LoadClient;
const ctx: ScenarioContext = { target: 'candela', scale: 1, questions: [{ text: 'q?', paraphrase: 'q' }], ignoreEos: false, seed: 1 };
const bounds = { maxRequests: 10_000, maxDurationS: 30, graceS: 5 };

before(async () => {
  const child = spawn(path.join(ROOT, 'scripts', 'node.sh'), [path.join(ROOT, '__test__', 'helpers', 'serve-fake-llm.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.once('data', (b: Buffer) => resolve(b.toString().trim()));
    child.once('exit', (code) => reject(new Error(`fake server exited (${code})`)));
  });
  fake = { url, child };
  client = createClient({ baseUrl: fake.url, timeoutMs: 10_000, connections: 64 });
  // Warm-up: connections and code paths, outside any measurement.
  await client.send({ method: 'POST', path: '/v1/generate/stream', kind: 'candela-sse', body: { tokens: 2 } });
});
after(async () => {
  await client.close();
  fake.child.kill('SIGTERM');
});

/** A one-phase scenario sending `body(i)` to `path`. */
function scenario(arrival: Arrival, path: string, kind: BodyKind, body: (i: number) => unknown): Scenario {
  return {
    name: 'test',
    description: 'test',
    openai: true,
    phases: () => [{ name: 'test', arrival, request: (i) => ({ method: body(i) === undefined ? 'GET' : 'POST', path, kind, body: body(i) }) }],
  };
}

const closed = (users: number, requests: number): Arrival => ({ kind: 'closed', stages: [{ users, durationS: 30 }], requests });
const run = (s: Scenario, slo: Slo | null = null, c: LoadClient = client) => runScenario(s, { client: c, ctx, bounds, slo });

function near(actual: number | undefined, expected: number, below: number, above: number, what: string): void {
  assert.ok(actual !== undefined && actual >= expected - below && actual <= expected + above, `${what}: ${actual} not within [${expected - below}, ${expected + above}]`);
}

describe('client-side timing', () => {
  for (const [shape, path, kind] of [
    ['Candela SSE', '/v1/generate/stream', 'candela-sse'],
    ['OpenAI SSE', '/v1/chat/completions', 'openai-sse'],
  ] as const) {
    it(`measures the injected TTFT, TPOT, ITL and E2E (${shape})`, async () => {
      const r = await run(scenario(closed(4, 16), path, kind, () => ({ ttft_ms: 80, itl_ms: 25, tokens: 9 })));
      assert.equal(r.successes, 16);
      assert.equal(r.output_tokens, 16 * 9, 'token counts from the usage');
      // Timers fire late, never early; a busy shared machine adds some.
      near(r.ttft_ms?.p50, 80, 2, 30, 'ttft p50');
      near(r.tpot_ms?.p50, 25, 1, 10, 'tpot p50');
      near(r.itl_ms?.p50, 25, 2, 10, 'itl p50');
      near(r.e2e_ms?.p50, 80 + 8 * 25, 2, 60, 'e2e p50');
      assert.ok(r.output_tokens_per_s > 0 && r.rps > 0);
    });
  }

  it('percentiles follow a known spread of injected TTFTs', async () => {
    // 20 requests: TTFT 20, 30, … 110 ms, each twice. Linear interpolation: p50 65, p95 and max 110.
    const r = await run(scenario(closed(5, 20), '/v1/generate/stream', 'candela-sse', (i) => ({ ttft_ms: 20 + 10 * (i % 10), itl_ms: 0, tokens: 2 })));
    near(r.ttft_ms?.p50, 65, 1, 20, 'ttft p50');
    near(r.ttft_ms?.p95, 110, 1, 25, 'ttft p95');
    near(r.ttft_ms?.max, 110, 1, 30, 'ttft max');
    assert.ok(r.ttft_ms!.p50 < r.ttft_ms!.p95);
  });

  it('computes percentiles as numpy does (linear interpolation)', () => {
    const xs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    assert.equal(percentile(xs, 0.5), 5.5);
    near(percentile(xs, 0.95), 9.55, 1e-9, 1e-9, 'p95');
    near(percentile(xs, 0.99), 9.91, 1e-9, 1e-9, 'p99');
    assert.equal(percentile([7], 0.99), 7);
  });

  it('counts goodput against SLOs', async () => {
    // Half the requests have a 10 ms TTFT, half 150 ms: an SLO of 80 ms passes half.
    const r = await run(scenario(closed(2, 10), '/v1/generate/stream', 'candela-sse', (i) => ({ ttft_ms: i % 2 ? 150 : 10, tokens: 2 })), { ttft_ms: 80 });
    assert.equal(r.goodput?.requests, 5);
    assert.equal(r.goodput?.fraction, 0.5);
  });

  it('reads X-Cache into a hit rate', async () => {
    const r = await run(scenario(closed(1, 3), '/v1/generate/stream', 'candela-sse', () => ({ tokens: 1 })));
    assert.deepEqual(r.cache, { exact: 0, semantic: 0, miss: 3, hit_rate: 0 });
  });
});

describe('arrivals', () => {
  it('an open loop keeps its Poisson rate', async () => {
    const rate = 40;
    const r = await run(scenario({ kind: 'open', rate, maxConcurrency: 50, durationS: 2.5, seed: 7 }, '/health', 'json', () => undefined));
    near(r.requests / 2.5, rate, rate * 0.2, rate * 0.2, 'arrivals per second');
    const starts = r.samples.map((s) => s.startMs).sort((a, b) => a - b);
    const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    const sd = Math.sqrt(gaps.reduce((a, b) => a + (b - mean) ** 2, 0) / gaps.length);
    near(mean, 1000 / rate, 5, 5, 'mean gap (ms)');
    // Exponential gaps: standard deviation ≈ mean (a fixed interval would give ~0).
    near(sd / mean, 1, 0.3, 0.3, 'coefficient of variation of the gaps');
  });

  it('an open loop never exceeds its concurrency cap', async () => {
    const from = await arrivalCount();
    const r = await run(scenario({ kind: 'open', rate: 200, maxConcurrency: 3, durationS: 1, requests: 30 }, '/slow', 'json', () => ({ delay_ms: 60 })));
    assert.equal(r.successes, r.requests);
    const seen = (await arrivals(from)).map((a) => a.inFlight);
    assert.equal(Math.max(...seen), 3, `in flight: ${seen.join(',')}`);
  });

  it('a spike produces its steps of concurrent users', async () => {
    const stages = [1, 3, 8, 1].map((users) => ({ users, durationS: 0.8 }));
    const from = await arrivalCount();
    await run(scenario({ kind: 'closed', stages }, '/v1/generate/stream', 'candela-sse', () => ({ ttft_ms: 20, itl_ms: 5, tokens: 3 })));
    const seen = await arrivals(from);
    const t0 = seen[0]!.atMs;
    stages.forEach((s, k) => {
      // The middle of each step, away from the edges where users join or finish.
      const inStep = seen.filter((a) => a.atMs - t0 > k * 800 + 200 && a.atMs - t0 < (k + 1) * 800 - 100).map((a) => a.inFlight);
      assert.ok(inStep.length > 0, `step ${k} saw requests`);
      assert.equal(Math.max(...inStep), s.users, `step ${k}: in flight ${inStep.join(',')}`);
    });
  });

  it('ramps interpolate users between stages', () => {
    const stages = [
      { users: 10, durationS: 10, ramp: true },
      { users: 10, durationS: 5 },
      { users: 0, durationS: 10, ramp: true },
    ];
    assert.equal(usersAt(stages, 0), 0);
    assert.equal(usersAt(stages, 5), 5);
    assert.equal(usersAt(stages, 12), 10);
    assert.equal(usersAt(stages, 20), 5);
    assert.equal(usersAt(stages, 26), 0);
  });
});

describe('errors and bounds', () => {
  it('counts errors by status and class (429 and 503 apart from other 5xx)', async () => {
    const statuses = [200, 429, 503, 500, 502, 404, 429];
    const r = await run(scenario(closed(2, statuses.length), '/status', 'json', (i) => ({ status: statuses[i] })));
    assert.deepEqual(r.errors, { '429': 2, '503': 1, '500': 1, '502': 1, '404': 1 });
    assert.deepEqual(r.error_classes, { rate_limited: 2, unavailable: 1, server_error: 2, client_error: 1 });
    assert.equal(r.error_details['rate_limited: HTTP 429 injected_429'], 2);
    assert.equal(r.successes, 1);
  });

  it('counts a stream that fails midway, a timeout and a refused connection', async () => {
    const streamed = await run(scenario(closed(1, 2), '/v1/chat/completions', 'openai-sse', () => ({ tokens: 5, fail_after: 2 })));
    assert.deepEqual(streamed.error_classes, { stream_error: 2 });
    const short = createClient({ baseUrl: fake.url, timeoutMs: 200, connections: 2 });
    const t = performance.now();
    const hung = await run(scenario(closed(1, 2), '/hang', 'json', () => ({ hang: true })), null, short);
    await short.close();
    assert.deepEqual(hung.errors, { timeout: 2 });
    assert.ok(performance.now() - t < 3000);
    const nowhere = createClient({ baseUrl: 'http://127.0.0.1:1', timeoutMs: 2000, connections: 1 });
    const refused = await run(scenario(closed(1, 1), '/health', 'json', () => undefined), null, nowhere);
    await nowhere.close();
    assert.deepEqual(refused.error_classes, { network: 1 });
  });

  it('stops on its request count and on its duration, aborting what outlives the grace', async () => {
    const counted = await run(scenario(closed(3, 7), '/health', 'json', () => undefined));
    assert.equal(counted.requests, 7);
    const open = await run(scenario({ kind: 'open', rate: 1000, maxConcurrency: 4, durationS: 10, requests: 5 }, '/health', 'json', () => undefined));
    assert.equal(open.requests, 5);
    const t = performance.now();
    const r = await runScenario(scenario({ kind: 'closed', stages: [{ users: 2, durationS: 0.4 }] }, '/hang', 'json', () => ({ hang: true })), {
      client,
      ctx,
      bounds: { maxRequests: 100, maxDurationS: 30, graceS: 0.3 },
      slo: null,
    });
    const took = performance.now() - t;
    assert.ok(took < 2000, `took ${took} ms`);
    assert.deepEqual(r.error_classes, { aborted: 2 });
    assert.deepEqual(r.stopped_by, ['duration']);
  });
});

describe('reports', () => {
  let results: ScenarioResult[];
  before(async () => {
    results = [await run(scenario(closed(2, 6), '/v1/generate/stream', 'candela-sse', () => ({ ttft_ms: 10, itl_ms: 5, tokens: 4 })))];
  });

  it('the JSON has the issue’s fields and no raw samples', () => {
    const info = { url: fake.url, target: 'candela' as const, model: null, started_at: new Date().toISOString(), scale: 1, max_tokens: null, ignore_eos: false, slo: null, seed: 1 };
    const j = JSON.parse(JSON.stringify(jsonReport(info, results, null))) as { scenarios: Record<string, unknown>[] };
    const s = j.scenarios[0]!;
    for (const k of ['requests', 'errors', 'rps', 'output_tokens_per_s', 'ttft_ms', 'tpot_ms', 'itl_ms', 'e2e_ms']) assert.ok(k in s, k);
    assert.deepEqual(Object.keys(s['ttft_ms'] as object).slice(0, 4), ['p50', 'p95', 'p99', 'max']);
    assert.equal(s['samples'], undefined);
  });

  it('the scorecard turns an hourly price into cost per 1k tokens and per answer', () => {
    const r = results[0]!;
    const c = scorecard(results, 3.6, { input_per_1k: 0.001, output_per_1k: 0.002, source: 'local-config' }, 3600);
    const row = c.rows[0]!;
    // 3.6/hour is 0.001/s.
    near(row.cost_per_1k_output_tokens!, 1 / r.output_tokens_per_s, 1e-6, 1e-6, 'per 1k');
    near(row.cost_per_answer!, 0.001 / (r.successes / r.duration_s), 1e-6, 1e-6, 'per answer');
    // 5 prompt tokens and 4 output tokens at the configured prices.
    near(row.configured_cost_per_answer!, (5 * 0.001 + 4 * 0.002) / 1000, 1e-9, 1e-9, 'configured');
    assert.equal(c.suggested.budget_per_window, 3.6);
  });

  it('reads RSS and the server e2e latency from Prometheus text', () => {
    const text = (sum: number, count: number) =>
      [
        '# HELP process_resident_memory_bytes Resident memory size in bytes.',
        'process_resident_memory_bytes 1048576',
        `vllm:e2e_request_latency_seconds_sum{model_name="a"} ${sum / 2}`,
        `vllm:e2e_request_latency_seconds_sum{model_name="b"} ${sum / 2}`,
        `vllm:e2e_request_latency_seconds_count{model_name="a"} ${count}`,
        'vllm:e2e_request_latency_seconds_bucket{le="1"} 3',
      ].join('\n');
    const a = readScrape(text(1, 10));
    assert.deepEqual(a, { rssBytes: 1048576, e2eSumS: 1, e2eCount: 10 });
    // 10 more requests took 3 s: 300 ms each.
    assert.equal(meanBetween(a, readScrape(text(4, 20))), 300);
    assert.equal(readScrape('').rssBytes, null);
  });

  it('the timeline gives rates per slice of the run', () => {
    const sample = (endMs: number, tokens: number, error: 'server_error' | null = null) => ({
      startMs: endMs - 10, status: error ? 500 : 200, error, ttftMs: null, itlMs: [], e2eMs: 10, outputTokens: tokens, promptTokens: null, cache: null,
    });
    // 10 s in 0.2 s slices: 2 answers of 5 tokens in the first slice, an error in the last.
    const t = timeline([sample(50, 5), sample(150, 5), sample(9990, 0, 'server_error')], 10);
    assert.equal(sliceWidthS(10), 0.2);
    assert.equal(t.length, 50);
    assert.deepEqual(t[0], { t_s: 0, completed_per_s: 10, errors_per_s: 0, output_tokens_per_s: 50 });
    assert.equal(t[49]!.errors_per_s, 5);
    assert.equal(sliceWidthS(3600), 72);
  });

  it('the HTML page is self-contained, with the chart library inlined', () => {
    const info = { url: fake.url, target: 'candela' as const, model: null, started_at: new Date().toISOString(), scale: 1, max_tokens: null, ignore_eos: false, slo: null, seed: 1 };
    const html = htmlReport(jsonReport(info, results, null), results);
    assert.doesNotMatch(html, /<script[^>]+src=/i);
    assert.doesNotMatch(html, /<link[^>]+href=/i);
    assert.match(html, /Chart\.js v4/);
    assert.match(html, /<canvas id="e2e-0">/);
    const data = /<script type="application\/json" id="chart-data">(.*?)<\/script>/s.exec(html)?.[1];
    const charts = JSON.parse(data!) as { e2e: { counts: number[] } }[];
    assert.equal(charts[0]!.e2e.counts.reduce((a, b) => a + b, 0), 6);
  });
});

describe('questions', () => {
  it('reads one question a line, with an optional tab-separated paraphrase', () => {
    const file = path.join(tempDir(), 'q.txt');
    writeFileSync(file, '# comment\nWhat is Candela?\tWhat is Candela, exactly?\n\nHow fast is it?\n');
    assert.deepEqual(loadQuestions(file), [
      { text: 'What is Candela?', paraphrase: 'What is Candela, exactly?' },
      { text: 'How fast is it?', paraphrase: 'Could you tell me: how fast is it?' },
    ]);
    writeFileSync(file, '# only a comment\n');
    assert.throws(() => loadQuestions(file), /holds no questions/);
    assert.ok(defaultQuestions().length >= 40);
  });
});

describe('the loadtest command', () => {
  // Spawned without blocking: the fake server runs in this process.
  const cli = async (...args: string[]) => {
    try {
      const r = await execFileP(CLI, ['loadtest', ...args], { encoding: 'utf8', timeout: 60_000 });
      return { status: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { status: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  const config = loadConfig({});

  it('lists its scenarios', async () => {
    const r = await cli('--list');
    assert.equal(r.status, 0, r.stderr);
    for (const n of ['health', 'tokenize', 'generate', 'batch-tokenize', 'batch-generate', 'sustained', 'spike', 'ramp', 'north-south', 'cache-phases', 'soak']) {
      assert.match(r.stdout, new RegExp(`^${n} `, 'm'));
    }
  });

  it('rejects mistakes as usage errors', async () => {
    const cases: [string[], RegExp][] = [
      [[], /needs --scenario/],
      [['--scenario', 'nope'], /unknown scenario 'nope'/],
      [['health'], /takes no arguments/],
      [['--scenario', 'health', '--slo', 'fast=1'], /--slo takes METRIC=MS/],
      [['--scenario', 'health', '--scale', '0'], /--scale must be a number >= 0.001/],
      [['--scenario', 'health', '--url', 'ftp://x'], /--url must be an http\(s\) URL/],
      [['--scenario', 'tokenize', '--openai', '--url', fake.url], /need Candela's own routes/],
      [['--scenario', 'health', '--questions', '/no/such/file'], /cannot read/],
    ];
    for (const [args, pattern] of cases) {
      await assert.rejects(loadtestCommand(args, config), (e: Error) => e instanceof UsageError && pattern.test(e.message), args.join(' '));
    }
    // As a user sees one: exit 2, one line, no stack trace.
    const r = await cli('--scenario', 'nope');
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^candela: unknown scenario 'nope'/);
    assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/);
  });

  it('runs against a server and writes JSON and HTML; an unreachable one exits 1', async () => {
    const dir = tempDir();
    const json = path.join(dir, 'r.json');
    const html = path.join(dir, 'r.html');
    const r = await cli('--url', fake.url, '--scenario', 'health', '--scale', '0.1', '--json', json, '--html', html, '--price-per-hour', '1');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^health — /m);
    assert.match(r.stdout, /scorecard at 1\/hour/);
    const j = JSON.parse(readFileSync(json, 'utf8')) as { scenarios: { scenario: string; requests: number }[] };
    assert.equal(j.scenarios[0]!.requests, 10);
    assert.match(readFileSync(html, 'utf8'), /^<!doctype html>/);
    const down = await cli('--url', 'http://127.0.0.1:1', '--scenario', 'health');
    assert.equal(down.status, 1);
    assert.match(down.stderr, /cannot reach http:\/\/127\.0\.0\.1:1/);
  });
});
