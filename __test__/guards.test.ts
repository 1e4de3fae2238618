/**
 * The guards in one process (in-memory state): API keys on every route the
 * router serves, the cost circuit breaker, and rate limits on requests and
 * generated tokens. Tiny generated models: mechanics only.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { once } from 'node:events';
import { pino } from 'pino';
import { writeTestModel } from './helpers/fixtures.ts';
import { requiredScope } from '../src/http/access.ts';
import { Engine } from '../src/engine/index.ts';
import { createApp } from '../src/http/app.ts';
import { Metrics } from '../src/services/metrics.ts';
import { RagService } from '../src/services/rag.ts';
import { listRoutes } from '../src/http/route-list.ts';
import type { RunningServer } from '../src/bootstrap.ts';
import { FileKeyStore } from '../src/services/api-keys.ts';
import { CostBreaker } from '../src/services/cost/cost-breaker.ts';
import { Pricing } from '../src/services/cost/pricing.ts';
import { MemorySpendStore } from '../src/services/cost/spend-store.ts';
import { tempDir } from './helpers/paths.ts';
import { startTinyServer } from './helpers/tiny-server.ts';

const fixtures = tempDir();
const MODELS = [
  { name: 'tiny', role: 'llm' as const, path: writeTestModel(fixtures, 'llama', 'q8_0', 1024) },
  { name: 'tiny-emb', role: 'embedder' as const, path: writeTestModel(fixtures, 'bert-cls') },
];

const json = (body: unknown, key?: string): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
  body: JSON.stringify(body),
});

describe('API keys', () => {
  let server: RunningServer;
  let base = '';
  let read = '';
  let write = '';
  let admin = '';
  before(async () => {
    const dataDir = tempDir('candela-data-');
    const keysFile = path.join(dataDir, 'keys.json');
    const keys = new FileKeyStore(keysFile);
    read = (await keys.create({ name: 'reader', scopes: ['read'] })).key;
    write = (await keys.create({ name: 'writer', scopes: ['read', 'write'] })).key;
    admin = (await keys.create({ name: 'ops', scopes: ['admin'] })).key;
    server = await startTinyServer(MODELS, { dataDir, keysFile, authEnabled: true });
    base = server.url;
  });
  after(async () => {
    await server?.close();
  });

  it('refuses every non-probe route the router serves without a key (401), and leaves the probes open', async () => {
    const routes = listRoutes(server.app);
    assert.ok(routes.length >= 30, `router enumeration found ${routes.length} routes`);
    const open: string[] = [];
    for (const route of routes) {
      const [method, template] = route.split(' ') as [string, string];
      const url = `${base}${template.replace(/:(\w+)/g, 'x')}`;
      const res = await fetch(url, { method, headers: { 'content-type': 'application/json' }, ...(method === 'POST' ? { body: '{}' } : {}) });
      await res.body?.cancel();
      if (res.status !== 401) open.push(`${route} → ${res.status}`);
      else assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer /);
    }
    // The web page loads without a key (it asks for one); its API calls do not.
    assert.deepEqual(open.sort(), ['GET / → 200', 'GET /health → 200', 'GET /health/live → 200', 'GET /health/ready → 200', 'GET /metrics → 200']);
  });

  it('refuses a malformed, unknown or wrong key (401) and a missing scope (403)', async () => {
    for (const bad of ['nope', 'cdl_AAAAAAAAAAAA_bad', `${read.slice(0, -2)}xx`]) {
      const res = await fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${bad}` } });
      assert.equal(res.status, 401, bad);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'invalid_api_key');
    }
    assert.equal((await fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${read}` } })).status, 200);
    assert.equal((await fetch(`${base}/v1/models`, { headers: { 'x-api-key': read } })).status, 200);
    const add = await fetch(`${base}/v1/documents`, json({ documents: [{ text: 'hello' }] }, read));
    assert.equal(add.status, 403);
    assert.equal(((await add.json()) as { error: { code: string } }).error.code, 'insufficient_scope');
    assert.equal((await fetch(`${base}/v1/documents`, json({ documents: [{ text: 'hello there' }] }, write))).status, 201);
    assert.equal((await fetch(`${base}/v1/models/tiny/unload`, { method: 'POST', headers: { authorization: `Bearer ${write}` } })).status, 403);
    assert.equal((await fetch(`${base}/v1/keys`, { headers: { authorization: `Bearer ${write}` } })).status, 403);
    // admin implies the others
    assert.equal((await fetch(`${base}/v1/generate`, json({ prompt: 'hi', max_tokens: 2 }, admin))).status, 200);
  });

  it('creates keys over HTTP (shown once, never listed) and a revoked key stops working at once', async () => {
    const created = await fetch(`${base}/v1/keys`, json({ name: 'temp', scopes: ['read'] }, admin));
    assert.equal(created.status, 201);
    const { key, id } = (await created.json()) as { key: string; id: string };
    assert.equal((await fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${key}` } })).status, 200);
    const listed = await (await fetch(`${base}/v1/keys`, { headers: { authorization: `Bearer ${admin}` } })).text();
    assert.ok(listed.includes(id) && !listed.includes(key) && !listed.includes('hash'));
    assert.equal((await fetch(`${base}/v1/keys/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${admin}` } })).status, 200);
    assert.equal((await fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${key}` } })).status, 401);
  });

  it('keeps API keys out of the access log', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const app = createApp({
      models: server.models,
      inference: server.inference,
      rag: new RagService({ models: server.models, inference: server.inference, documents: () => undefined }),
      metrics: new Metrics(new Engine()),
      logger,
      bodyLimitBytes: 1 << 20,
      sseHeartbeatMs: 1000,
    });
    const s = app.listen(0, '127.0.0.1');
    await once(s, 'listening');
    const url = `http://127.0.0.1:${(s.address() as { port: number }).port}`;
    await (await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${read}` } })).text();
    await (await fetch(`${url}/v1/models`, { headers: { 'x-api-key': write } })).text();
    s.close();
    const log = lines.join('');
    assert.match(log, /\/v1\/models/);
    assert.ok(!log.includes(read.slice(-12)) && !log.includes(write.slice(-12)), 'a key reached the log');
    assert.match(log, /\[redacted\]/);
  });

  it('counts auth failures in /metrics', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.match(text, /candela_auth_failures_total\{reason="missing"\} [1-9]/);
    assert.match(text, /candela_auth_failures_total\{reason="invalid"\} [1-9]/);
    assert.match(text, /candela_auth_failures_total\{reason="scope"\} [1-9]/);
  });

  it('protects /metrics when configured to', async () => {
    assert.equal(requiredScope('GET', '/metrics', { metricsAuth: false }), null);
    assert.equal(requiredScope('GET', '/metrics', { metricsAuth: true }), 'read');
    assert.equal(requiredScope('GET', '/v1/something-added-later', { metricsAuth: false }), 'read');
    // Over HTTP, on a server with CANDELA_METRICS_AUTH on (the one above leaves /metrics open).
    const dataDir = tempDir('candela-data-');
    const keysFile = path.join(dataDir, 'keys.json');
    const reader = (await new FileKeyStore(keysFile).create({ name: 'scraper', scopes: ['read'] })).key;
    const guarded = await startTinyServer([], { dataDir, keysFile, authEnabled: true, metricsAuth: true });
    try {
      const bare = await fetch(`${guarded.url}/metrics`);
      assert.equal(bare.status, 401);
      assert.match(bare.headers.get('www-authenticate') ?? '', /^Bearer /);
      assert.doesNotMatch(await bare.text(), /process_resident_memory_bytes/, 'no metrics without a key');
      assert.equal((await fetch(`${guarded.url}/metrics`, { headers: { authorization: 'Bearer nope' } })).status, 401);
      const scraped = await fetch(`${guarded.url}/metrics`, { headers: { authorization: `Bearer ${reader}` } });
      assert.equal(scraped.status, 200);
      assert.match(await scraped.text(), /^process_resident_memory_bytes \d+/m);
      assert.equal((await fetch(`${guarded.url}/health/ready`)).status, 200, 'probes stay open');
    } finally {
      await guarded.close();
    }
  });
});

describe('cost circuit breaker', () => {
  let server: RunningServer;
  let base = '';
  before(async () => {
    // 0.001 per completion token, budget 0.01: about two 4-token generations.
    server = await startTinyServer(MODELS, { budget: 0.01, budgetWindowS: 3600, priceInputPer1k: 0, priceOutputPer1k: 1 });
    base = server.url;
    assert.equal((await fetch(`${base}/v1/documents`, json({ documents: [{ id: 'a', text: 'the cat sat on the mat' }] }))).status, 201);
  });
  after(async () => {
    await server?.close();
  });

  it('opens with 503 + Retry-After once the budget is spent, still serving cache hits, and reports state and spend', async () => {
    const q = { query: 'where did the cat sit', max_tokens: 4, top_k_retrieve: 1, top_k_rerank: 1 };
    assert.equal((await fetch(`${base}/v1/query`, json(q))).status, 200);
    let refused: Response | undefined;
    for (let i = 0; i < 6 && !refused; i++) {
      const res = await fetch(`${base}/v1/generate`, json({ prompt: 'count with me', max_tokens: 4 }));
      if (res.status === 503) refused = res;
      else assert.equal(res.status, 200);
    }
    assert.ok(refused, 'the breaker never opened');
    const body = (await refused.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'budget_exceeded');
    assert.ok(Number(refused.headers.get('retry-after')) > 0);
    // Cached answers cost nothing and are still served; new questions are not.
    const cached = await fetch(`${base}/v1/query`, json(q));
    assert.equal(cached.status, 200);
    assert.equal(cached.headers.get('x-cache'), 'exact');
    assert.equal((await fetch(`${base}/v1/query`, json({ ...q, query: 'what is on the mat', cache: false }))).status, 503);
    const stats = (await (await fetch(`${base}/health/stats`)).json()) as { breaker: { state: string; spent: number; budget: number } };
    assert.equal(stats.breaker.state, 'open');
    assert.ok(stats.breaker.spent > 0.006 && stats.breaker.spent <= 0.01, `spent ${stats.breaker.spent}`);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /candela_breaker_state 2/);
    assert.match(metrics, /candela_breaker_rejections_total [1-9]/);
    assert.match(metrics, /candela_breaker_window_spend 0\.0\d+/);
  });
});

describe('cost breaker logic', () => {
  const logger = pino({ level: 'silent' });
  it('reserves the worst case, reconciles with the actual use, and rolls the window', async () => {
    let now = 1_000_000;
    const breaker = new CostBreaker({ store: new MemorySpendStore(60_000), pricing: new Pricing({ inputPer1k: 0, outputPer1k: 1000 }), budget: 10, windowS: 60, logger, now: () => now });
    const a = await breaker.reserve('m', 10, 6); // 6 reserved
    await assert.rejects(breaker.reserve('m', 10, 6), /budget/); // 12 > 10
    assert.equal(breaker.state, 'open');
    await a.settle({ promptTokens: 10, completionTokens: 2, engineMs: 5 }); // a cancelled stream used 2
    assert.equal(await breaker.spent(), 2);
    await assert.rejects(breaker.reserve('m', 10, 6), /budget/, 'still open until its retry time');
    now += 61_000; // the window has rolled
    assert.equal(breaker.state, 'half-open');
    const b = await breaker.reserve('m', 10, 9);
    assert.equal(breaker.state, 'closed');
    await b.settle({ promptTokens: 10, completionTokens: 9, engineMs: 5 });
    assert.equal(await breaker.spent(), 9);
  });

  it('prices per model, by tokens or by engine time', () => {
    const p = Pricing.parse('{"big": {"input_per_1k": 1, "output_per_1k": 2}, "local": {"per_second": 0.5}}', { inputPer1k: 0, outputPer1k: 0 });
    assert.equal(p.actual('big', 1000, 500, 0), 2);
    assert.equal(p.actual('local', 1000, 500, 4000), 2);
    assert.equal(p.actual('other', 1000, 500, 4000), 0);
    assert.throws(() => Pricing.parse('{"m": {"input_per_1k": -1, "output_per_1k": 0}}', { inputPer1k: 0, outputPer1k: 0 }), /invalid prices/);
  });
});

describe('rate limits', () => {
  let server: RunningServer;
  let base = '';
  before(async () => {
    server = await startTinyServer(MODELS, { rateLimitIpRpm: 3, rateLimitIpTpm: 6 });
    base = server.url;
  });
  after(async () => {
    await server?.close();
  });

  it('counts requests per client address: RateLimit headers, then 429 with Retry-After; probes are not counted', async () => {
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${base}/v1/models`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('ratelimit-limit'), '3');
      remaining.push(res.headers.get('ratelimit-remaining') ?? '');
      assert.equal((await fetch(`${base}/health/ready`)).status, 200);
    }
    assert.deepEqual(remaining, ['2', '1', '0']);
    const limited = await fetch(`${base}/v1/models`);
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
    assert.equal(limited.headers.get('ratelimit-remaining'), '0');
    assert.equal(((await limited.json()) as { error: { code: string; type: string } }).error.type, 'rate_limit_error');
    assert.match(await (await fetch(`${base}/metrics`)).text(), /candela_rate_limited_total\{limit="requests"\} [1-9]/);
  });
});

describe('token rate limits', () => {
  let server: RunningServer;
  let base = '';
  before(async () => {
    server = await startTinyServer(MODELS, { rateLimitIpTpm: 6 });
    base = server.url;
  });
  after(async () => {
    await server?.close();
  });

  it('charges generated tokens and refuses generation once the minute’s allowance is used', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await fetch(`${base}/v1/generate`, json({ prompt: 'go on', max_tokens: 4 }))).status);
    assert.ok(statuses.includes(429), `statuses ${statuses.join(',')}`);
    assert.equal(statuses[0], 200);
    // Non-generating routes still work.
    assert.equal((await fetch(`${base}/v1/tokenize`, json({ text: 'hello' }))).status, 200);
  });
});
