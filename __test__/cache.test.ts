/**
 * The semantic cache over HTTP (in-memory store): exact and paraphrase hits
 * with the real all-MiniLM-L6-v2 embedder, the misses the scope demands
 * (model, sampling, retrieval settings, tenant, corpus change, negation),
 * streaming replay, and that only completed answers are stored.
 * Generation runs on a tiny generated model: mechanics, not quality.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EventSourceParserStream, type EventSourceMessage } from 'eventsource-parser/stream';
import { writeTestModel } from './helpers/fixtures.ts';
import type { RunningServer } from '../src/bootstrap.ts';
import { FileKeyStore } from '../src/services/api-keys.ts';
import { loadConfig } from '../src/config.ts';
import { realModel, tempDir } from './helpers/paths.ts';
import { startTinyServer } from './helpers/tiny-server.ts';

let server: RunningServer;
let base = '';
let keyA = '';
let keyB = '';
let admin = '';

type Answer = { answer: string; cache_hit: boolean; cache?: { kind: string; score: number; matched_query: string }; usage: { completion_tokens: number }; model: string };

async function query(body: Record<string, unknown>, key = keyA): Promise<{ status: number; xcache: string | null; body: Answer }> {
  const res = await fetch(`${base}/v1/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ max_tokens: 6, top_k_retrieve: 3, top_k_rerank: 2, ...body }),
  });
  return { status: res.status, xcache: res.headers.get('x-cache'), body: (await res.json()) as Answer };
}

async function stream(body: Record<string, unknown>, signal?: AbortSignal, onFirstToken?: () => void) {
  const res = await fetch(`${base}/v1/query/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${keyA}` },
    body: JSON.stringify({ max_tokens: 6, top_k_retrieve: 3, top_k_rerank: 2, ...body }),
    signal,
  });
  const events: EventSourceMessage[] = [];
  const reader = res.body!.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      events.push(value);
      if (value.event === 'token') onFirstToken?.();
    }
  } catch (err) {
    if (!signal?.aborted) throw err;
  }
  return { xcache: res.headers.get('x-cache'), events };
}

before(async () => {
  const minilm = realModel('all-minilm-l6-v2');
  const dir = tempDir();
  const dataDir = tempDir('candela-data-');
  const keysFile = path.join(dataDir, 'keys.json');
  const keys = new FileKeyStore(keysFile);
  keyA = (await keys.create({ name: 'alice', scopes: ['read', 'write'] })).key;
  keyB = (await keys.create({ name: 'bob', scopes: ['read'] })).key;
  admin = (await keys.create({ name: 'ops', scopes: ['admin'] })).key;
  server = await startTinyServer(
    [
      // A long window, so a stream can run long enough to be cancelled midway.
      { name: 'tiny', role: 'llm', path: writeTestModel(dir, 'llama', 'q8_0', 4096) },
      { name: 'tiny-b', role: 'llm', path: writeTestModel(path.join(dir, 'b'), 'qwen2', 'q8_0', 1024) },
      { name: 'all-minilm-l6-v2', role: 'embedder', path: minilm! },
    ],
    { dataDir, keysFile, authEnabled: true },
  );
  base = server.url;
  const docs = ['The cat sat on the mat by the door.', 'Beyonce became famous in the late 1990s as the lead singer of Destiny’s Child.', 'Paris is the capital of France.'];
  const res = await fetch(`${base}/v1/documents`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${keyA}` },
    body: JSON.stringify({ documents: docs.map((text, i) => ({ id: `d${i}`, text })) }),
  });
  assert.equal(res.status, 201);
});

after(async () => {
  await server?.close();
});

describe('semantic cache', () => {
  it('misses first, then hits exactly on the same question (case, spacing and trailing punctuation folded)', async () => {
    const first = await query({ query: 'Where did the cat sit?' });
    assert.equal(first.status, 200);
    assert.equal(first.xcache, 'miss');
    assert.equal(first.body.cache_hit, false);
    assert.ok(first.body.usage.completion_tokens > 0);
    const again = await query({ query: '  where did the CAT sit ' });
    assert.equal(again.xcache, 'exact');
    assert.equal(again.body.cache_hit, true);
    assert.equal(again.body.cache?.kind, 'exact');
    assert.equal(again.body.answer, first.body.answer);
    assert.equal(again.body.usage.completion_tokens, 0, 'nothing was generated for a hit');
  });

  it('hits semantically on a paraphrase above the threshold', async () => {
    const hit = await query({ query: 'Where was the cat sitting?' });
    assert.equal(hit.xcache, 'semantic');
    assert.equal(hit.body.cache?.matched_query, 'Where did the cat sit?');
    assert.ok(hit.body.cache.score >= 0.92 && hit.body.cache.score < 1, `score ${hit.body.cache?.score}`);
  });

  it('misses on the Beyonce pair at 0.92 with all-MiniLM-L6-v2', async () => {
    assert.equal((await query({ query: 'When did Beyonce start becoming famous?' })).xcache, 'miss');
    assert.equal((await query({ query: 'When did Beyonce become a star?' })).xcache, 'miss');
    assert.equal((await query({ query: 'When did Beyonce start becoming famous' })).xcache, 'exact');
  });

  it('misses when a negation is added, however close the embeddings are (0.97 here)', async () => {
    const [plain, negated] = ['Is the cat on the mat?', 'Is the cat not on the mat?'];
    // The pair is above the threshold, so it is the negation guard, not the threshold, that refuses it.
    const [u, v] = await server.inference.embed('all-minilm-l6-v2', [plain, negated]);
    const similarity = u!.reduce((s, x, i) => s + x * v![i]!, 0);
    assert.ok(similarity > loadConfig({}).cacheThreshold, `similarity ${similarity.toFixed(3)}`);
    assert.equal((await query({ query: plain })).xcache, 'miss');
    assert.equal((await query({ query: negated })).xcache, 'miss');
  });

  it('never crosses scopes: another model, sampling parameters, retrieval settings or tenant miss', async () => {
    const q = 'What is the capital of France?';
    assert.equal((await query({ query: q })).xcache, 'miss');
    assert.equal((await query({ query: q })).xcache, 'exact');
    const other = await query({ query: q, model: 'tiny-b' });
    assert.equal(other.xcache, 'miss');
    assert.equal(other.body.model, 'tiny-b');
    assert.equal((await query({ query: q, temperature: 0.7 })).xcache, 'miss');
    assert.equal((await query({ query: q, max_tokens: 7 })).xcache, 'miss');
    assert.equal((await query({ query: q, top_k_retrieve: 2 })).xcache, 'miss');
    // No reranker here, so hybrid is the default: naming it is the same scope, dense is another.
    assert.equal((await query({ query: q, retrieval: 'hybrid' })).xcache, 'exact');
    assert.equal((await query({ query: q, retrieval: 'dense' })).xcache, 'miss');
    assert.equal((await query({ query: q }, keyB)).xcache, 'miss', 'another tenant');
    assert.equal((await query({ query: q }, keyB)).xcache, 'exact', 'its own entry');
  });

  it('misses after the corpus changes, and drops the stale entries', async () => {
    const q = 'Where did the cat sit?';
    assert.equal((await query({ query: q })).xcache, 'exact');
    const before = (await (await fetch(`${base}/v1/cache`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { entries: number };
    const add = await fetch(`${base}/v1/documents`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${keyA}` },
      body: JSON.stringify({ documents: [{ id: 'd9', text: 'The dog slept under the table.' }] }),
    });
    assert.equal(add.status, 201);
    assert.equal((await query({ query: q })).xcache, 'miss');
    const afterAdd = (await (await fetch(`${base}/v1/cache`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { entries: number };
    assert.ok(afterAdd.entries < before.entries, `entries ${before.entries} → ${afterAdd.entries}`);
    const del = await fetch(`${base}/v1/documents/d9`, { method: 'DELETE', headers: { authorization: `Bearer ${keyA}` } });
    assert.equal(del.status, 200);
    assert.equal((await query({ query: q })).xcache, 'miss');
  });

  it('replays a cached answer in the same SSE contract, marked cache_hit', async () => {
    const q = 'Which city is the capital of France?';
    const first = await stream({ query: q });
    assert.equal(first.xcache, 'miss');
    const generated = first.events.filter((e) => e.event === 'token').map((e) => (JSON.parse(e.data) as { text: string }).text).join('');
    const replay = await stream({ query: q });
    assert.equal(replay.xcache, 'exact');
    assert.deepEqual([...new Set(replay.events.map((e) => e.event))], ['meta', 'token', 'done']);
    assert.equal((JSON.parse(replay.events[0]!.data) as { cache_hit: boolean }).cache_hit, true);
    const replayed = replay.events.filter((e) => e.event === 'token').map((e) => (JSON.parse(e.data) as { text: string }).text).join('');
    assert.equal(replayed, generated);
    const done = JSON.parse(replay.events.at(-1)!.data) as { cache_hit: boolean; finish_reason: string };
    assert.equal(done.cache_hit, true);
    // A JSON query of the same question is served from the streamed answer too.
    assert.equal((await query({ query: q })).body.answer, generated);
  });

  it('stores only completed answers: a stream cancelled midway is not cached', async () => {
    const q = 'Tell me everything about the mat.';
    const ac = new AbortController();
    // ignore_eos: the answer is 3000 tokens whatever the tiny model samples, so the abort lands midway.
    await stream({ query: q, max_tokens: 3000, ignore_eos: true }, ac.signal, () => ac.abort());
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await query({ query: q, max_tokens: 3000, ignore_eos: true, cache: true }).then((r) => r.xcache)), 'miss');
  });

  it('can be bypassed per request, and flushed by an admin', async () => {
    const q = 'Does the cache honour opting out?';
    assert.equal((await query({ query: q, cache: false })).xcache, 'miss');
    assert.equal((await query({ query: q })).xcache, 'miss', 'the opted-out answer was not stored');
    assert.equal((await query({ query: q })).xcache, 'exact');
    const forbidden = await fetch(`${base}/v1/cache`, { method: 'DELETE', headers: { authorization: `Bearer ${keyA}` } });
    assert.equal(forbidden.status, 403);
    const flushed = await fetch(`${base}/v1/cache`, { method: 'DELETE', headers: { authorization: `Bearer ${admin}` } });
    assert.equal(flushed.status, 200);
    assert.ok(((await flushed.json()) as { flushed: number }).flushed > 0);
    assert.equal((await query({ query: q })).xcache, 'miss');
  });

  it('counts hits by kind, misses and lookup latency in /metrics', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    for (const outcome of ['exact', 'semantic', 'miss']) assert.match(text, new RegExp(`candela_cache_lookups_total\\{outcome="${outcome}"\\} [1-9]`));
    assert.match(text, /candela_cache_lookup_seconds_bucket\{le="0.005",outcome="semantic"\} [1-9]/);
    assert.match(text, /candela_cache_entries \d+/);
  });
});
