/**
 * The RAG prompt as callers and operators steer it, on tiny generated models
 * (mechanics, not answer quality): `system_prompt` on /v1/query,
 * /v1/query/stream and /v1/batch, its place in the cache scope,
 * CANDELA_RAG_SYSTEM_PROMPT, the `citations` of JSON answers and `done`
 * events mapped to the sources' document ids, and sources grouped per document.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readSseEvents } from './helpers/sse.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import { writeTestModel } from './helpers/fixtures.ts';
import type { RunningServer } from '../src/bootstrap.ts';
import { DEFAULT_RAG_SYSTEM_PROMPT } from '../src/services/rag-prompt.ts';
import { PASSAGE_GAP } from '../src/services/source-groups.ts';
import { tempDir } from './helpers/paths.ts';
import { startTinyServer } from './helpers/tiny-server.ts';

type Answer = {
  answer: string;
  sources: { id: string }[];
  citations: { source: number; id: string; title: string }[];
  usage: { prompt_tokens: number };
  cache_hit: boolean;
};

const LONG_PROMPT = 'Answer in one sentence, then cite the source number in square brackets. '.repeat(6).trim();
let dir = '';
let server: RunningServer;
let operator: RunningServer;

const post = (base: string, path: string, body: unknown) =>
  fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function query(base: string, body: Record<string, unknown>): Promise<{ xcache: string | null; body: Answer }> {
  const res = await post(base, '/v1/query', { max_tokens: 4, top_k_retrieve: 3, top_k_rerank: 2, temperature: 0, ...body });
  assert.equal(res.status, 200, await res.clone().text());
  return { xcache: res.headers.get('x-cache'), body: (await res.json()) as Answer };
}

/** Citations must name the document of the source they number. */
function assertCitationsMapped(a: { citations: Answer['citations']; sources: { id: string }[] }): void {
  assert.ok(Array.isArray(a.citations));
  for (const c of a.citations) assert.equal(c.id, a.sources[c.source - 1]?.id);
}

async function startWith(overrides: Parameters<typeof startTinyServer>[1]): Promise<RunningServer> {
  const s = await startTinyServer(
    [
      { name: 'tiny', role: 'llm', path: writeTestModel(dir, 'llama', 'q8_0', 1024) },
      { name: 'tiny-emb', role: 'embedder', path: writeTestModel(dir, 'bert-cls') },
    ],
    overrides,
  );
  const docs = ['the cat sat on the mat', 'a dog ran in the park', 'the sun is a star'];
  const res = await post(s.url, '/v1/documents', { documents: docs.map((text, i) => ({ id: `d${i}`, title: `Doc ${i}`, text })) });
  assert.equal(res.status, 201);
  return s;
}

before(async () => {
  dir = tempDir();
  server = await startWith({});
  operator = await startWith({ ragSystemPrompt: LONG_PROMPT });
});

after(async () => {
  await server?.close();
  await operator?.close();
});

describe('system_prompt', () => {
  it('reaches the model and replaces the default', async () => {
    const plain = await query(server.url, { query: 'where did the cat sit', cache: false });
    const steered = await query(server.url, { query: 'where did the cat sit', cache: false, system_prompt: LONG_PROMPT });
    assert.ok(steered.body.usage.prompt_tokens > plain.body.usage.prompt_tokens + 20, `${steered.body.usage.prompt_tokens} vs ${plain.body.usage.prompt_tokens}`);
    // The operator's default (CANDELA_RAG_SYSTEM_PROMPT) is the prompt of queries that bring none.
    const byConfig = await query(operator.url, { query: 'where did the cat sit', cache: false });
    const sameSent = await query(operator.url, { query: 'where did the cat sit', cache: false, system_prompt: LONG_PROMPT });
    const shortSent = await query(operator.url, { query: 'where did the cat sit', cache: false, system_prompt: 'Be brief.' });
    assert.equal(byConfig.body.usage.prompt_tokens, sameSent.body.usage.prompt_tokens);
    assert.ok(byConfig.body.usage.prompt_tokens > shortSent.body.usage.prompt_tokens + 20);
  });

  it('is part of the cache scope', async () => {
    const q = 'what is the sun';
    assert.equal((await query(server.url, { query: q, system_prompt: 'Be brief.' })).xcache, 'miss');
    assert.equal((await query(server.url, { query: q, system_prompt: 'Be brief.' })).xcache, 'exact');
    assert.equal((await query(server.url, { query: q, system_prompt: 'Be very brief.' })).xcache, 'miss');
    assert.equal((await query(server.url, { query: q })).xcache, 'miss');
    // Sending the default prompt explicitly is the same scope as sending none.
    assert.equal((await query(server.url, { query: q, system_prompt: DEFAULT_RAG_SYSTEM_PROMPT })).xcache, 'exact');
  });

  it('is accepted per query in a batch', async () => {
    const res = await post(server.url, '/v1/batch', {
      queries: [
        { query: 'where did the dog run', max_tokens: 4, cache: false },
        { query: 'where did the dog run', max_tokens: 4, cache: false, system_prompt: LONG_PROMPT },
        { query: 'where did the dog run', system_prompt: '   ' },
      ],
    });
    assert.equal(res.status, 200);
    const b = (await res.json()) as { data: [Answer, Answer, { status: number; error: { param: string } }] };
    assert.ok(b.data[1].usage.prompt_tokens > b.data[0].usage.prompt_tokens);
    assert.equal(b.data[2].status, 422);
    assert.equal(b.data[2].error.param, 'queries.2.system_prompt');
  });

  it('rejects empty and oversized prompts, and is documented', async () => {
    for (const system_prompt of ['', '  ', 'x'.repeat(20_001), 42]) {
      const res = await post(server.url, '/v1/query', { query: 'where did the cat sit', system_prompt });
      assert.equal(res.status, 422, JSON.stringify(system_prompt).slice(0, 20));
      assert.equal(((await res.json()) as { error: { param: string } }).error.param, 'system_prompt');
    }
    const spec = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
      paths: Record<string, { post: { requestBody: { content: { 'application/json': { schema: { properties: Record<string, unknown> } } } } } }>;
    };
    for (const p of ['/v1/query', '/v1/query/stream']) {
      assert.ok('system_prompt' in spec.paths[p]!.post.requestBody.content['application/json'].schema.properties, p);
    }
  });
});

describe('CANDELA_RAG_SYSTEM_PROMPT', () => {
  it('sets the default prompt; blank is refused', () => {
    assert.equal(loadConfig({}).ragSystemPrompt, DEFAULT_RAG_SYSTEM_PROMPT);
    assert.equal(loadConfig({ CANDELA_RAG_SYSTEM_PROMPT: 'Answer briefly.' }).ragSystemPrompt, 'Answer briefly.');
    assert.throws(() => loadConfig({ CANDELA_RAG_SYSTEM_PROMPT: '   ' }), ConfigError);
  });
});

describe('citations', () => {
  it('come with JSON answers and done events, mapped to document ids', async () => {
    const json = await query(server.url, { query: 'where did the cat sit', cache: false, max_tokens: 12 });
    assertCitationsMapped(json.body);

    const res = await post(server.url, '/v1/query/stream', { query: 'where did the cat sit', max_tokens: 12, top_k_retrieve: 3, top_k_rerank: 2, temperature: 0 });
    const events = await readSseEvents(res);
    const meta = JSON.parse(events[0]!.data) as { sources: { id: string }[] };
    const done = JSON.parse(events.at(-1)!.data) as { citations: Answer['citations']; documents: string[] };
    assert.equal(events.at(-1)!.event, 'done');
    assertCitationsMapped({ citations: done.citations, sources: meta.sources });
    // Same question, temperature 0: the stream cites what the JSON answer cites.
    assert.deepEqual(done.citations, json.body.citations);

    // Replayed from the cache, the answer carries the same citations.
    const first = await query(server.url, { query: 'where did the cat sit' });
    const hit = await query(server.url, { query: 'where did the cat sit' });
    assert.equal(hit.body.cache_hit, true);
    assert.deepEqual(hit.body.citations, first.body.citations);
  });
});

describe('sources', () => {
  it('are one per document: its retrieved chunks joined in document order, their positions listed', async () => {
    // Small chunks, so one document makes several and a query retrieves more than one of them.
    const s = await startTinyServer(
      [
        { name: 'tiny', role: 'llm', path: writeTestModel(dir, 'llama', 'q8_0', 1024) },
        { name: 'tiny-emb', role: 'embedder', path: writeTestModel(dir, 'bert-cls') },
      ],
      { chunkTokens: 24, chunkOverlapTokens: 8 },
    );
    try {
      const long = Array.from({ length: 12 }, (_, i) => `The cat number ${i} sat on mat ${i}.`).join(' ');
      const docs = [{ id: 'long', title: 'Cats', text: long }, { id: 'dog', title: 'Dog', text: 'a dog ran in the park' }];
      assert.equal((await post(s.url, '/v1/documents', { documents: docs })).status, 201);
      const q = { query: 'which cat sat on which mat', retrieval: 'hybrid' };
      const found = (await (await post(s.url, '/v1/search', { ...q, top_k: 6 })).json()) as { data: { document_id: string; chunk_index: number; text: string }[] };
      const res = await post(s.url, '/v1/query', { ...q, top_k_retrieve: 6, top_k_rerank: 6, max_tokens: 2, include_sources: true, cache: false });
      assert.equal(res.status, 200);
      const a = (await res.json()) as { sources: { id: string; chunks: number[]; text: string }[] };
      // The same chunks as the search, grouped: each document once, in the order of its best chunk.
      const order = [...new Set(found.data.map((h) => h.document_id))];
      assert.deepEqual(a.sources.map((x) => x.id), order);
      const longHits = found.data.filter((h) => h.document_id === 'long');
      assert.ok(longHits.length >= 2, `the query should retrieve several chunks of one document (${longHits.length})`);
      const source = a.sources.find((x) => x.id === 'long')!;
      assert.deepEqual(source.chunks, longHits.map((h) => h.chunk_index).sort((x, y) => x - y));
      for (const h of longHits) assert.ok(source.text.includes(h.text), `chunk ${h.chunk_index} is in the source`);
      // No sentence twice: neighbouring chunks' overlap appears once.
      const sentences = source.text.split(PASSAGE_GAP).flatMap((p) => p.split(/(?<=\.)\s+/u)).filter(Boolean);
      assert.equal(new Set(sentences).size, sentences.length, source.text);
    } finally {
      await s.close();
    }
  });
});
