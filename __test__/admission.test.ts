/**
 * The admission path (services/inference.ts, services/admission.ts): the
 * queue's logic on its own, then embed and rerank over HTTP on tiny models —
 * a full queue answers 429 + Retry-After, a client that leaves while queued
 * never reaches the engine, and the metrics count every call by outcome.
 *
 * Over HTTP the app is assembled from ready services as the composition root
 * does, with one difference: the engine's encoder calls pass a gate the test
 * opens, so "a call holds the model's slot" is a state the test controls
 * rather than a race against how fast the machine embeds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { once } from 'node:events';
import type { Server } from 'node:http';
import { pino } from 'pino';
import { Engine, EngineError } from '../src/engine/index.ts';
import { createApp } from '../src/http/app.ts';
import { AdmissionQueue } from '../src/services/admission.ts';
import { BudgetExceededError, CostBreaker } from '../src/services/cost/cost-breaker.ts';
import { Pricing } from '../src/services/cost/pricing.ts';
import { MemorySpendStore } from '../src/services/cost/spend-store.ts';
import { InferenceService, type ModelRunner } from '../src/services/inference.ts';
import { Metrics } from '../src/services/metrics.ts';
import { ModelService } from '../src/services/model-service.ts';
import { RagService } from '../src/services/rag.ts';
import { writeTestModel } from './helpers/fixtures.ts';
import { tempDir } from './helpers/paths.ts';
import { startTinyServer } from './helpers/tiny-server.ts';

const codeOf = (e: unknown): unknown => (e as EngineError).code;

describe('AdmissionQueue', () => {
  it('runs at most `concurrency` calls and grants slots in arrival order', async () => {
    const q = new AdmissionQueue('m', { concurrency: 2, maxQueue: 4 });
    const order: number[] = [];
    const a = await q.acquire();
    const b = await q.acquire();
    const waiting = [3, 4].map((n) => q.acquire().then((release) => (order.push(n), release)));
    assert.deepEqual([q.running, q.waiting], [2, 2]);
    b();
    b(); // a second release is ignored
    const c = await waiting[0]!;
    assert.deepEqual([q.running, q.waiting, order], [2, 1, [3]]);
    a();
    const d = await waiting[1]!;
    assert.deepEqual(order, [3, 4]);
    c();
    d();
    assert.deepEqual([q.running, q.waiting], [0, 0]);
  });

  it('refuses a call past the waiting line with OVERLOADED', async () => {
    const q = new AdmissionQueue('m', { concurrency: 1, maxQueue: 1 });
    const release = await q.acquire();
    const queued = q.acquire();
    await assert.rejects(q.acquire(), (e) => codeOf(e) === 'OVERLOADED' && /busy/.test((e as Error).message));
    release();
    (await queued)();
    assert.deepEqual([q.running, q.waiting], [0, 0]);
  });

  it('with no waiting line, refuses a call as soon as every slot is taken', async () => {
    const q = new AdmissionQueue('m', { concurrency: 1, maxQueue: 0 });
    const release = await q.acquire();
    await assert.rejects(q.acquire(), (e) => codeOf(e) === 'OVERLOADED');
    release();
  });

  it('a waiting call whose signal aborts leaves the line with CANCELLED; the next moves up', async () => {
    const q = new AdmissionQueue('m', { concurrency: 1, maxQueue: 2 });
    const release = await q.acquire();
    const ac = new AbortController();
    const gone = q.acquire(ac.signal);
    const next = q.acquire();
    ac.abort();
    await assert.rejects(gone, (e) => codeOf(e) === 'CANCELLED');
    assert.equal(q.waiting, 1);
    release();
    (await next)();
    assert.deepEqual([q.running, q.waiting], [0, 0]);
    await assert.rejects(q.acquire(AbortSignal.abort()), (e) => codeOf(e) === 'CANCELLED');
  });
});

interface Case {
  op: 'embed' | 'rerank';
  model: string;
  path: string;
  body: unknown;
}

const CASES: Case[] = [
  { op: 'embed', model: 'tiny-emb', path: '/v1/embed', body: { model: 'tiny-emb', inputs: ['a short text'] } },
  { op: 'rerank', model: 'tiny-rerank', path: '/v1/rerank', body: { model: 'tiny-rerank', query: 'fox', documents: ['a fox', 'a dog'] } },
];

describe('admission over HTTP: embed and rerank', () => {
  const engine = new Engine();
  /** Encoder calls that reached the engine, by model. */
  const reached = new Map<string, number>();
  let gate: PromiseWithResolvers<void> = Promise.withResolvers();
  const through = async <T>(model: string, run: () => Promise<T>): Promise<T> => {
    reached.set(model, (reached.get(model) ?? 0) + 1);
    await gate.promise;
    return run();
  };
  const runner: ModelRunner = {
    generate: (...a) => engine.generate(...a),
    tokenize: (...a) => engine.tokenize(...a),
    detokenize: (...a) => engine.detokenize(...a),
    countEmbeddingTokens: (...a) => engine.countEmbeddingTokens(...a),
    embed: (...a) => through(a[0], () => engine.embed(...a)),
    rerank: (...a) => through(a[0], () => engine.rerank(...a)),
  };
  let http: Server;
  let base: string;

  before(async () => {
    const dir = tempDir();
    // maxQueue 1: one call runs per model (the engine's own line holds one) and one waits behind it.
    const models = new ModelService({
      engine,
      models: [
        { name: 'tiny-emb', role: 'embedder', path: writeTestModel(dir, 'bert-cls'), maxQueue: 1 },
        { name: 'tiny-rerank', role: 'reranker', path: writeTestModel(dir, 'cross-encoder'), maxQueue: 1 },
      ],
    });
    await models.loadAll();
    const metrics = new Metrics(engine);
    const inference = new InferenceService({ engine: runner, models, observer: metrics.inferenceObserver });
    const rag = new RagService({ models, inference, documents: () => undefined });
    const app = createApp({ models, inference, rag, metrics, logger: pino({ level: 'silent' }), bodyLimitBytes: 1 << 20, sseHeartbeatMs: 1000 });
    http = app.listen(0, '127.0.0.1');
    await once(http, 'listening');
    base = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
  });
  after(async () => {
    gate.resolve();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
    for (const m of engine.listModels()) engine.unloadModel(m.name);
  });

  const post = (c: Case, signal?: AbortSignal) =>
    fetch(`${base}${c.path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(c.body), signal });

  /** A sample of /metrics (0 when absent). */
  const sample = async (name: string, labels: Record<string, string>): Promise<number> => {
    const text = await (await fetch(`${base}/metrics`)).text();
    const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    for (const line of text.split('\n')) {
      const m = /^([^{\s]+)\{([^}]*)\} (\S+)$/.exec(line);
      if (m?.[1] === name && want.every((w) => m[2]!.split(',').includes(w))) return Number(m[3]);
    }
    return 0;
  };
  const calls = (c: Case, outcome: string) => sample('candela_inference_requests_total', { model: c.model, op: c.op, outcome });
  const ran = (c: Case) => sample('candela_inference_seconds_count', { model: c.model, op: c.op });
  /** Polls until `probe` returns `want` (bounded: 10 s). */
  const until = async (probe: () => Promise<number>, want: number, what: string) => {
    const deadline = Date.now() + 10_000;
    let got = await probe();
    while (got !== want && Date.now() < deadline) {
      await sleep(10);
      got = await probe();
    }
    assert.equal(got, want, what);
  };

  for (const c of CASES) {
    it(`${c.op}: a full queue answers 429 + Retry-After, a client that leaves while queued never reaches the engine, metrics count each outcome`, async () => {
      gate = Promise.withResolvers();
      const reached0 = reached.get(c.model) ?? 0;
      // The first call takes the model's slot and is held at the gate.
      const holder = post(c);
      await until(() => sample('candela_inference_running', { model: c.model }), 1, 'the slot is taken');
      // A second call waits in line; its client will leave.
      const ac = new AbortController();
      const leaving = post(c, ac.signal).catch((e: unknown) => e);
      await until(() => sample('candela_inference_waiting', { model: c.model }), 1, 'the second call waits');
      // The line is full: the next ones are refused at once.
      const refused = await Promise.all(Array.from({ length: 3 }, () => post(c)));
      for (const r of refused) {
        assert.equal(r.status, 429);
        assert.ok(Number(r.headers.get('retry-after')) >= 1, 'Retry-After');
        const body = (await r.json()) as { error: { code: string; type: string } };
        assert.deepEqual([body.error.code, body.error.type], ['overloaded', 'rate_limit_error']);
      }
      ac.abort();
      assert.equal(((await leaving) as Error).name, 'AbortError');
      await until(() => calls(c, 'cancelled'), 1, 'the queued call is counted cancelled');
      assert.equal(await sample('candela_inference_waiting', { model: c.model }), 0);
      // Open the gate: the holder completes, and the model serves the next call at once.
      gate.resolve();
      const held = await holder;
      assert.equal(held.status, 200);
      await held.arrayBuffer();
      const next = await post(c);
      assert.equal(next.status, 200);
      await next.arrayBuffer();
      // The holder and the last call reached the engine; the refused and the cancelled did not.
      assert.equal((reached.get(c.model) ?? 0) - reached0, 2);
      assert.equal(await ran(c), 2);
      assert.equal(await calls(c, 'ok'), 2);
      assert.equal(await calls(c, 'overloaded'), 3);
      assert.equal(await sample('candela_inference_running', { model: c.model }), 0);
    });
  }
});

describe('admission as the server wires it', () => {
  it('counts every model call of the real server by op and outcome, with embedding input tokens', async () => {
    const dir = tempDir();
    const server = await startTinyServer([
      { name: 'tiny', role: 'llm', path: writeTestModel(dir, 'llama') },
      { name: 'tiny-emb', role: 'embedder', path: writeTestModel(dir, 'bert-cls') },
      { name: 'tiny-rerank', role: 'reranker', path: writeTestModel(dir, 'cross-encoder') },
    ]);
    try {
      const post = async (path: string, body: unknown) => {
        const r = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        return { status: r.status, json: (await r.json()) as Record<string, unknown> };
      };
      assert.equal((await post('/v1/embed', { inputs: ['one', 'two'] })).status, 200);
      const openai = await post('/v1/embeddings', { input: 'three words here' });
      assert.equal(openai.status, 200);
      assert.equal((await post('/v1/rerank', { query: 'q', documents: ['a', 'b'] })).status, 200);
      assert.equal((await post('/v1/tokenize', { text: ['a', 'b'] })).status, 200);
      assert.equal((await post('/v1/generate', { prompt: 'hi', max_tokens: 2 })).status, 200);
      assert.equal((await post('/v1/embed', { model: 'tiny-rerank', inputs: ['x'] })).status, 422);
      // Unknown names are refused before they can add a series (a client cannot grow /metrics at will).
      assert.equal((await post('/v1/embed', { model: 'nope', inputs: ['x'] })).status, 404);
      assert.equal((await post('/v1/tokenize', { model: 'nope2', text: 'x' })).status, 404);
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const value = (series: string) => Number(text.split('\n').find((l) => l.startsWith(`${series} `))?.split(' ')[1] ?? NaN);
      assert.equal(value('candela_inference_requests_total{model="tiny-emb",op="embed",outcome="ok"}'), 2);
      assert.equal(value('candela_inference_requests_total{model="tiny-rerank",op="rerank",outcome="ok"}'), 1);
      assert.equal(value('candela_inference_requests_total{model="tiny",op="tokenize",outcome="ok"}'), 2);
      assert.equal(value('candela_inference_requests_total{model="tiny",op="generate",outcome="ok"}'), 1);
      assert.equal(value('candela_inference_requests_total{model="tiny-rerank",op="embed",outcome="error"}'), 1);
      assert.ok(!text.includes('nope'));
      // /v1/embeddings counts its input for usage; the same count reaches the prompt-token counter.
      const usage = openai.json['usage'] as { prompt_tokens: number };
      assert.ok(usage.prompt_tokens > 0);
      assert.equal(value('vllm:prompt_tokens_total{model_name="tiny-emb"}'), usage.prompt_tokens);
    } finally {
      await server.close();
    }
  });
});

describe('the cost breaker on encoder calls', () => {
  it('charges embed calls of a priced model by input tokens, refuses them once the budget is spent, and leaves unpriced models alone', async () => {
    const engine = new Engine();
    const dir = tempDir();
    const models = new ModelService({
      engine,
      models: [
        { name: 'tiny-emb', role: 'embedder', path: writeTestModel(dir, 'bert-cls') },
        { name: 'tiny-free', role: 'embedder', path: writeTestModel(dir, 'bert-mean') },
      ],
    });
    await models.loadAll();
    const spent: number[] = [];
    const breaker = new CostBreaker({
      store: new MemorySpendStore(60_000),
      // The default price is a generation's; only tiny-emb has a price of its own: 1 per 1,000 input tokens.
      pricing: new Pricing({ inputPer1k: 1, outputPer1k: 1 }, { 'tiny-emb': { inputPer1k: 1, outputPer1k: 0 } }),
      budget: 0.05,
      windowS: 60,
      logger: pino({ level: 'silent' }),
      observer: { rejected: () => undefined, spent: (amount) => void spent.push(amount), storeError: () => undefined },
    });
    const inference = new InferenceService({ engine, models, breaker });
    try {
      const texts = ['a few words to embed'];
      const tokens = engine.countEmbeddingTokens('tiny-emb', texts)[0]!;
      await inference.embed('tiny-emb', texts);
      assert.equal(spent.length, 1);
      assert.ok(Math.abs(spent[0]! - tokens / 1000) < 1e-12, `charged ${spent[0]} for ${tokens} tokens`);
      await inference.embed('tiny-free', texts);
      assert.equal(spent.length, 1, 'an unpriced model is not charged');
      let refused: unknown;
      for (let i = 0; i < 100 && refused === undefined; i++) await inference.embed('tiny-emb', texts).catch((e: unknown) => (refused = e));
      assert.ok(refused instanceof BudgetExceededError, String(refused));
      assert.ok(spent.reduce((a, b) => a + b, 0) <= 0.05 + 1e-9);
      // The breaker is open, yet the unpriced model still serves.
      assert.equal((await inference.embed('tiny-free', texts)).length, 1);
    } finally {
      for (const m of engine.listModels()) engine.unloadModel(m.name);
    }
  });
});
