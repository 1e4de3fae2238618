/**
 * RAG over HTTP on tiny generated models (mechanics, not answer quality):
 * /v1/query, the /v1/query/stream SSE contract, /v1/batch concurrency and
 * per-item errors, and the validation the original deployment enforced.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readSseEvents } from './helpers/sse.ts';
import type { RunningServer } from '../src/bootstrap.ts';
import { tempDir } from './helpers/paths.ts';
import { startTinyServer, tinyRagModels } from './helpers/tiny-server.ts';

let server: RunningServer;
let base = '';
const post = (path: string, body: unknown) =>
  fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

before(async () => {
  const dir = tempDir();
  server = await startTinyServer(tinyRagModels(dir));
  base = server.url;
  const docs = ['the cat sat on the mat', 'a dog ran in the park', 'the sun is a star', 'water is wet', 'hello world'];
  const res = await post('/v1/documents', { documents: docs.map((text, i) => ({ id: `d${i}`, title: `Doc ${i}`, text })) });
  assert.equal(res.status, 201);
});

after(async () => {
  await server.close();
});

describe('query', () => {
  it('answers with sources, usage and stage timings', async () => {
    const res = await post('/v1/query', { query: 'where did the cat sit', top_k_retrieve: 4, top_k_rerank: 2, max_tokens: 8, include_sources: true });
    assert.equal(res.status, 200);
    const b = (await res.json()) as {
      answer: string;
      sources: { id: string; title: string; score: number; text?: string }[];
      reranked: boolean;
      timings: Record<string, number>;
      cache_hit: boolean;
      request_id: string;
      usage: { completion_tokens: number };
    };
    assert.equal(typeof b.answer, 'string');
    assert.equal(b.sources.length, 2);
    assert.ok(b.sources.every((s) => typeof s.text === 'string' && s.title.startsWith('Doc')));
    assert.ok(b.sources[0]!.score >= b.sources[1]!.score);
    assert.equal(b.reranked, true);
    for (const k of ['retrieval_ms', 'rerank_ms', 'ttft_ms', 'generation_ms', 'total_ms']) assert.ok(b.timings[k]! >= 0, k);
    assert.equal(b.cache_hit, false);
    assert.equal(b.request_id, res.headers.get('x-request-id'));
    const lean = (await (await post('/v1/query', { query: 'where did the cat sit', max_tokens: 4 })).json()) as { sources: { text?: string }[] };
    assert.equal(lean.sources.length, 4, 'default top_k_rerank is 4 (one source per document: these are one chunk each)');
    assert.ok(lean.sources.every((s) => s.text === undefined), 'text only with include_sources');
  });

  it('streams meta, tokens and done per the SSE contract', async () => {
    const res = await post('/v1/query/stream', { query: 'what is the sun', max_tokens: 6 });
    const events = await readSseEvents(res);
    assert.equal(events[0]?.event, 'meta');
    const meta = JSON.parse(events[0].data) as { request_id: string; model: string; k: number; sources: unknown[] };
    assert.equal(meta.model, 'tiny');
    assert.equal(meta.k, 4);
    const done = events.at(-1)!;
    assert.equal(done.event, 'done');
    const d = JSON.parse(done.data) as { request_id: string; model_id: string; k: number; documents: string[]; token_count: number; tokens_per_sec: number; finish_reason: string; timings: { ttft_ms: number; total_ms: number } };
    assert.equal(d.request_id, meta.request_id);
    assert.equal(d.documents.length, 4);
    const tokenEvents = events.filter((e) => e.event === 'token').length;
    // Every token event carries at least one token; a UTF-8 piece may span several.
    assert.ok(d.token_count >= tokenEvents && d.token_count > 0, `${d.token_count} tokens, ${tokenEvents} events`);
    assert.ok(['stop', 'length'].includes(d.finish_reason));
    assert.ok(d.timings.total_ms >= d.timings.ttft_ms);
  });

  it('validates like the original deployment did', async () => {
    for (const [body, param] of [
      [{ query: 'ab' }, 'query'],
      [{ query: 'valid query', top_k_retrieve: 100 }, 'top_k_retrieve'],
      [{ query: 'valid query', top_k_rerank: 21 }, 'top_k_rerank'],
      [{}, 'query'],
    ] as const) {
      const res = await post('/v1/query', body);
      assert.equal(res.status, 422, JSON.stringify(body));
      assert.equal(((await res.json()) as { error: { param: string } }).error.param, param);
    }
  });
});

describe('batch', () => {
  it('runs queries concurrently, in order, with per-item errors', async () => {
    const queries = Array.from({ length: 8 }, (_, i) => ({ query: `question number ${i} about cats`, max_tokens: 24 }));
    let sequential = 0;
    for (const q of queries) {
      const t = performance.now();
      assert.equal((await post('/v1/query', q)).status, 200);
      sequential += performance.now() - t;
    }
    const t = performance.now();
    const res = await post('/v1/batch', { queries: [...queries, { query: 'ab' }] });
    const wall = performance.now() - t;
    assert.equal(res.status, 200);
    const b = (await res.json()) as { data: ({ answer: string } | { error: { code: string; param: string }; status: number })[] };
    assert.equal(b.data.length, 9);
    assert.ok(b.data.slice(0, 8).every((r) => 'answer' in r));
    const last = b.data[8]!;
    assert.ok('error' in last && last.status === 422 && last.error.param === 'queries.8.query');
    // Loose: concurrent generations share engine steps, so the batch beats the sum of single runs.
    assert.ok(wall < sequential, `batch ${wall.toFixed(0)} ms vs sequential ${sequential.toFixed(0)} ms`);
  });

  it('records retrieval and rerank latency', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.ok(Number(/^candela_retrieval_seconds_count (\d+)/m.exec(text)?.[1]) >= 1);
    assert.ok(Number(/^candela_rerank_seconds_count (\d+)/m.exec(text)?.[1]) >= 1);
  });

  it('rejects empty and oversized batches', async () => {
    assert.equal((await post('/v1/batch', { queries: [] })).status, 422);
    assert.equal((await post('/v1/batch', { queries: Array.from({ length: 51 }, () => ({ query: 'abc' })) })).status, 413);
  });
});
