/**
 * POST /v1/search on tiny generated models (mechanics, not quality): the
 * response shape and scores per mode, reranking, validation, the 400 when a
 * rerank is asked of a server without a reranker, and that /v1/query cites
 * exactly what /v1/search returns (one retrieval, not a copy).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../src/bootstrap.ts';
import { tempDir } from './helpers/paths.ts';
import { startTinyServer, tinyRagModels } from './helpers/tiny-server.ts';

interface SearchHit {
  rank: number;
  document_id: string;
  title: string;
  chunk_index: number;
  text: string;
  score: number;
  scores: { dense: number; bm25: number | null; fused: number | null; rerank: number | null };
}
interface SearchResponse {
  object: string;
  data: SearchHit[];
  retrieval: string;
  reranked: boolean;
  models: { embedder: string; reranker: string | null };
  timings: Record<string, number>;
  request_id: string;
}

let withReranker: RunningServer;
let withoutReranker: RunningServer;

const post = (server: RunningServer, path: string, body: unknown) =>
  fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const search = async (server: RunningServer, body: unknown) => {
  const res = await post(server, '/v1/search', body);
  return { status: res.status, body: (await res.json()) as SearchResponse & { error?: { code: string; param: string | null; message: string } } };
};

const DOCS = [
  'the cat sat on the mat',
  'a dog ran in the park',
  'the sun is a star',
  'water is wet',
  'hello world',
  'zebras have black and white stripes',
  'rivers flow to the sea',
];

before(async () => {
  const dir = tempDir();
  const models = tinyRagModels(dir);
  withReranker = await startTinyServer(models);
  withoutReranker = await startTinyServer(models.filter((m) => m.role !== 'reranker'));
  for (const server of [withReranker, withoutReranker]) {
    const res = await post(server, '/v1/documents', { documents: DOCS.map((text, i) => ({ id: `d${i}`, title: `Doc ${i}`, text })) });
    assert.equal(res.status, 201);
  }
});

after(async () => {
  await withReranker?.close();
  await withoutReranker?.close();
});

describe('POST /v1/search', () => {
  it('returns ranked chunks with dense scores and stage timings (dense by default with a reranker loaded)', async () => {
    const { status, body } = await search(withReranker, { query: 'where did the cat sit' });
    assert.equal(status, 200);
    assert.equal(body.object, 'list');
    assert.equal(body.retrieval, 'dense');
    assert.equal(body.reranked, false);
    assert.deepEqual(body.models, { embedder: 'tiny-emb', reranker: null });
    assert.equal(body.data.length, 5, 'top_k defaults to 5');
    body.data.forEach((h, i) => {
      assert.equal(h.rank, i + 1);
      assert.equal(h.title, `Doc ${h.document_id.slice(1)}`);
      assert.equal(h.text, DOCS[Number(h.document_id.slice(1))]);
      assert.equal(h.chunk_index, 0);
      assert.equal(h.score, h.scores.dense);
      assert.deepEqual([h.scores.bm25, h.scores.fused, h.scores.rerank], [null, null, null]);
      if (i > 0) assert.ok(body.data[i - 1]!.score >= h.score);
    });
    for (const k of ['embed_ms', 'dense_ms', 'bm25_ms', 'fuse_ms', 'rerank_ms', 'total_ms']) assert.ok(body.timings[k]! >= 0, k);
    assert.equal(body.timings['bm25_ms'], 0);
  });

  it('fuses BM25 and dense rankings in hybrid mode: an exact term match comes first', async () => {
    const { body } = await search(withReranker, { query: 'zebras', top_k: 7, retrieval: 'hybrid' });
    assert.equal(body.retrieval, 'hybrid');
    assert.equal(body.data.length, 7);
    const [top] = body.data;
    assert.equal(top!.document_id, 'd5', 'the only chunk with the term: first in BM25, and in the fusion');
    assert.ok(top!.scores.bm25! > 0);
    assert.equal(top!.score, top!.scores.fused);
    assert.ok(body.data.slice(1).every((h) => h.scores.bm25 === null && typeof h.scores.dense === 'number'));
    for (let i = 1; i < body.data.length; i++) assert.ok(body.data[i - 1]!.score >= body.data[i]!.score);
    assert.ok(body.timings['bm25_ms']! >= 0 && body.timings['fuse_ms']! >= 0);
  });

  it('reranks with the cross-encoder when asked', async () => {
    const { status, body } = await search(withReranker, { query: 'what is the sun', top_k: 3, rerank: true });
    assert.equal(status, 200);
    assert.equal(body.reranked, true);
    assert.equal(body.models.reranker, 'tiny-rerank');
    assert.equal(body.data.length, 3);
    assert.ok(body.data.every((h) => h.scores.rerank !== null && h.score === h.scores.rerank));
    for (let i = 1; i < 3; i++) assert.ok(body.data[i - 1]!.score >= body.data[i]!.score);
    assert.ok(body.timings['rerank_ms']! > 0);
  });

  it('defaults to hybrid without a reranker, and refuses a rerank with 400', async () => {
    const plain = await search(withoutReranker, { query: 'zebras', top_k: 2 });
    assert.equal(plain.status, 200);
    assert.equal(plain.body.retrieval, 'hybrid');
    assert.equal(plain.body.data[0]!.document_id, 'd5');
    const refused = await search(withoutReranker, { query: 'zebras', rerank: true });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error?.code, 'rerank_unavailable');
    assert.equal(refused.body.error?.param, 'rerank');
    assert.match(refused.body.error?.message ?? '', /no reranker/);
  });

  it('validates the body (422 naming the parameter)', async () => {
    for (const [bad, param] of [
      [{ query: '' }, 'query'],
      [{}, 'query'],
      [{ query: 'x', top_k: 0 }, 'top_k'],
      [{ query: 'x', top_k: 101 }, 'top_k'],
      [{ query: 'x', top_k: 2.5 }, 'top_k'],
      [{ query: 'x', retrieval: 'sparse' }, 'retrieval'],
      [{ query: 'x', rerank: 'yes' }, 'rerank'],
    ] as const) {
      const { status, body } = await search(withReranker, bad);
      assert.equal(status, 422, JSON.stringify(bad));
      assert.equal(body.error?.param, param);
    }
    assert.equal((await search(withReranker, { query: 'x', top_k: 100 })).body.data.length, DOCS.length);
  });

  it('is the retrieval /v1/query cites', async () => {
    for (const retrieval of ['dense', 'hybrid'] as const) {
      const found = await search(withoutReranker, { query: 'does the dog run in the park', top_k: 3, retrieval });
      const res = await post(withoutReranker, '/v1/query', { query: 'does the dog run in the park', top_k_retrieve: 3, top_k_rerank: 3, max_tokens: 2, include_sources: true, retrieval, cache: false });
      assert.equal(res.status, 200);
      const answer = (await res.json()) as { sources: { id: string; score: number; text: string }[] };
      assert.deepEqual(answer.sources.map((s) => [s.id, s.text]), found.body.data.map((h) => [h.document_id, h.text]), retrieval);
      answer.sources.forEach((s, i) => assert.ok(Math.abs(s.score - found.body.data[i]!.score) < 1e-9));
    }
    const bad = await post(withoutReranker, '/v1/query', { query: 'does the dog run', retrieval: 'sparse' });
    assert.equal(bad.status, 422);
    const batch = await post(withoutReranker, '/v1/batch', {
      queries: [
        { query: 'where is the cat', retrieval: 'dense', max_tokens: 2, include_sources: true },
        { query: 'where is the cat', retrieval: 'hybrid', max_tokens: 2, include_sources: true },
        { query: 'where is the cat', retrieval: 'sparse' },
      ],
    });
    const items = ((await batch.json()) as { data: { sources?: unknown[]; status?: number; error?: { param: string } }[] }).data;
    // The default top_k_rerank (4 chunks; one chunk per document here, so 4 sources).
    assert.equal(items[0]!.sources?.length, 4);
    assert.equal(items[1]!.sources?.length, 4);
    assert.equal(items[2]!.status, 422);
    assert.equal(items[2]!.error?.param, 'queries.2.retrieval');
  });
});
