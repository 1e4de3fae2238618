/**
 * Which embedder does what: the default set retrieves with BGE (its query
 * instruction before queries) and compares cached questions with MiniLM;
 * one embedder alone does both. Through a real server on tiny models, the
 * RAG route's source scores are those of the instruction-prefixed query.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { serveModelSpecs } from '../src/cli/serve-command.ts';
import { loadConfig } from '../src/config.ts';
import { Engine } from '../src/engine/index.ts';
import type { RunningServer } from '../src/bootstrap.ts';
import { DEFAULT_MODEL_NAMES } from '../src/models/manifest.ts';
import { ModelService } from '../src/services/model-service.ts';
import { writeTestModel } from './helpers/fixtures.ts';
import { tempDir } from './helpers/paths.ts';
import { startTinyServer } from './helpers/tiny-server.ts';

const INSTRUCTION = 'Represent this sentence for searching relevant passages: ';

describe('embedder roles', () => {
  it('the default set retrieves with BGE and its instruction, and caches with MiniLM', () => {
    const modelsDir = tempDir();
    for (const name of DEFAULT_MODEL_NAMES) mkdirSync(path.join(modelsDir, name));
    const specs = serveModelSpecs(Object.freeze({ ...loadConfig({}), modelsDir, serveModels: [] }));
    const models = new ModelService({ engine: new Engine(), models: specs });
    assert.equal(models.embedderFor('retrieval')?.name, 'bge-small-en-v1.5');
    assert.equal(models.embedderFor('retrieval')?.queryInstruction, INSTRUCTION);
    assert.equal(models.embedderFor('cache')?.name, 'all-minilm-l6-v2');
    assert.equal(models.embedderFor('cache')?.queryInstruction, undefined);
    const minilmOnly = new ModelService({ engine: new Engine(), models: specs.filter((s) => s.name !== 'bge-small-en-v1.5') });
    assert.equal(minilmOnly.embedderFor('retrieval')?.name, 'all-minilm-l6-v2');
  });
});

describe('a server with a retrieval and a cache embedder', () => {
  let server: RunningServer;
  const dir = tempDir();
  before(async () => {
    server = await startTinyServer([
      { name: 'tiny', role: 'llm', path: writeTestModel(dir, 'llama', 'q8_0', 1024) },
      { name: 'tiny-cache', role: 'embedder', path: writeTestModel(dir, 'bert-mean'), uses: ['cache'] },
      { name: 'tiny-ret', role: 'embedder', path: writeTestModel(dir, 'bert-cls'), uses: ['retrieval'], queryInstruction: INSTRUCTION },
    ]);
  });
  after(async () => {
    await server.close();
  });

  it('stores passages with the retrieval embedder and scores sources against the instruction-prefixed query', async () => {
    const text = 'the cat sat on the mat';
    const post = await fetch(`${server.url}/v1/documents`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'cat', text }) });
    assert.equal(post.status, 201);
    const listing = (await (await fetch(`${server.url}/v1/documents`)).json()) as { embedder: string };
    assert.equal(listing.embedder, 'tiny-ret');

    const query = 'where did the cat sit';
    const res = await fetch(`${server.url}/v1/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, include_sources: true, max_tokens: 2, cache: false, retrieval: 'dense' }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { sources: { id: string; score: number }[] };
    const engine = server.inference;
    const [passage] = await engine.embed('tiny-ret', [text]);
    const dot = (q: Float32Array): number => q.reduce((s, v, i) => s + v * passage![i]!, 0);
    const [withInstruction] = await engine.embed('tiny-ret', [INSTRUCTION + query]);
    const [plain] = await engine.embed('tiny-ret', [query]);
    assert.ok(Math.abs(dot(withInstruction!) - dot(plain!)) > 1e-4, 'the instruction changes the score');
    assert.ok(Math.abs(body.sources[0]!.score - dot(withInstruction!)) < 1e-5, `score ${body.sources[0]!.score}, want ${dot(withInstruction!)}`);
  });

  it('embeds with the query instruction when input_type is query, as given otherwise', async () => {
    const post = async (path: string, body: object): Promise<unknown> => {
      const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(res.status, 200);
      return res.json();
    };
    const engine = server.inference;
    const [query] = await engine.embed('tiny-ret', [INSTRUCTION + 'where is the cat']);
    const [plain] = await engine.embed('tiny-ret', ['where is the cat']);
    const openai = (await post('/v1/embeddings', { model: 'tiny-ret', input: 'where is the cat', input_type: 'query' })) as { data: { embedding: number[] }[] };
    assert.deepEqual(openai.data[0]!.embedding, Array.from(query!));
    const tei = (await post('/v1/embed', { model: 'tiny-ret', inputs: ['where is the cat'] })) as number[][];
    assert.deepEqual(tei[0], Array.from(plain!));
    const teiQuery = (await post('/v1/embed', { model: 'tiny-ret', inputs: ['where is the cat'], input_type: 'query' })) as number[][];
    assert.deepEqual(teiQuery[0], Array.from(query!));
    const bad = await fetch(`${server.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'x', input_type: 'question' }) });
    assert.equal(bad.status, 422);
  });

  it('GET /v1/models says what each embedder serves, its pooling and its query instruction', async () => {
    const { data } = (await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string; serves?: string[]; pooling?: string; query_instruction?: string | null }[] };
    const byId = new Map(data.map((m) => [m.id, m]));
    assert.deepEqual(byId.get('tiny-ret'), { ...byId.get('tiny-ret'), serves: ['retrieval'], pooling: 'cls', query_instruction: INSTRUCTION });
    assert.deepEqual(byId.get('tiny-cache'), { ...byId.get('tiny-cache'), serves: ['cache'], pooling: 'mean', query_instruction: null });
    assert.equal(byId.get('tiny')?.serves, undefined);
  });
});
