/**
 * Changing the retrieval embedder: documents stored with the old one keep
 * serving through their old vectors (searched with a query embedded by the
 * old model) while a background job re-embeds them one by one, durably;
 * a delete during the job is not undone. Queries carry the embedder's
 * instruction, passages do not. Two tiny generated embedders stand in for
 * MiniLM and BGE.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Engine } from '../src/engine/index.ts';
import { FileDocumentStore } from '../src/services/document-store-file.ts';
import { DocumentService, type ReembedProgress } from '../src/services/documents.ts';
import { writeTestModel } from './helpers/fixtures.ts';
import { tempDir } from './helpers/paths.ts';

const engine = new Engine();
const fixtures = tempDir();
const dataDir = tempDir();
const texts = {
  bread: 'bread flour yeast oven dough loaf baking',
  stocks: 'stock market shares prices investors trading',
  cells: 'cell mitochondria energy respiration biology',
};

const service = (embedder: string, extra: Partial<ConstructorParameters<typeof DocumentService>[0]> = {}): DocumentService =>
  new DocumentService({
    engine,
    store: new FileDocumentStore(dataDir),
    embedder,
    chunkTokens: 64,
    overlapTokens: 8,
    isReady: (name) => engine.listModels().some((m) => m.name === name && m.status === 'ready'),
    ...extra,
  });

before(async () => {
  await engine.loadModel({ name: 'old-emb', role: 'embedder', path: writeTestModel(fixtures, 'bert-mean') });
  await engine.loadModel({ name: 'new-emb', role: 'embedder', path: writeTestModel(fixtures, 'bert-cls') });
  const old = service('old-emb');
  await old.open();
  for (const [id, text] of Object.entries(texts)) await old.add({ id, text });
});
after(() => {
  for (const m of engine.listModels()) engine.unloadModel(m.name);
});

describe('re-embedding after the retrieval embedder changed', () => {
  it('serves old documents through their own embedder, re-embeds them durably, and does not undo a delete', async () => {
    const progress: ReembedProgress[] = [];
    const docs = service('new-emb', { onReembed: (p) => progress.push(p) });
    await docs.open();
    assert.equal(docs.reembedProgress, undefined);

    // Before the job: hits come from the old vectors, scored with the old model's query embedding.
    const [oldQuery] = await engine.embed('old-emb', [texts.stocks]);
    const before = await docs.searchDense(texts.stocks, 3);
    assert.equal(before.length, 3);
    assert.equal(before[0]!.docId, 'stocks');
    assert.ok(Math.abs(before[0]!.score - docs.get('stocks')!.chunks[0]!.embedding.reduce((s, v, i) => s + v * oldQuery![i]!, 0)) < 1e-5);
    const versionBefore = docs.version;

    const job = docs.reembedStale();
    const deleted = docs.delete('cells');
    const final = await job;
    assert.equal(await deleted, true);
    assert.deepEqual({ ...final }, { embedder: 'new-emb', total: 3, done: 3, failed: 0, pending: 0, running: false });
    assert.equal(progress.at(-1)?.running, false);
    assert.ok(progress.length >= 3);
    assert.notEqual(docs.version, versionBefore);

    // On disk: every document now carries the new embedder's vectors; the deleted one stays deleted.
    const stored = await new FileDocumentStore(dataDir).loadAll();
    assert.deepEqual(stored.map((d) => d.id).sort(), ['bread', 'stocks']);
    assert.ok(stored.every((d) => d.embedder === 'new-emb'));
    const [passage] = await engine.embed('new-emb', [texts.bread]);
    assert.deepEqual(stored.find((d) => d.id === 'bread')!.chunks[0]!.embedding, passage);

    // After: hits come from the new index, scored with the new model's query embedding.
    const [newQuery] = await engine.embed('new-emb', [texts.bread]);
    const afterHits = await docs.searchDense(texts.bread, 3);
    assert.equal(afterHits.length, 2);
    assert.ok(Math.abs(afterHits.find((h) => h.docId === 'bread')!.score - passage!.reduce((s, v, i) => s + v * newQuery![i]!, 0)) < 1e-5);

    // A reopened service finds nothing left to do.
    const again = service('new-emb');
    await again.open();
    assert.deepEqual({ ...(await again.reembedStale()) }, { embedder: 'new-emb', total: 0, done: 0, failed: 0, pending: 0, running: false });
  });

  it('puts the query instruction before queries only', async () => {
    const docs = service('new-emb', { queryInstruction: 'Represent this sentence for searching relevant passages: ' });
    await docs.open();
    const [want] = await engine.embed('new-emb', ['Represent this sentence for searching relevant passages: where is the bread']);
    assert.deepEqual(await docs.embedQuery('where is the bread'), want);
    const [plain] = await engine.embed('new-emb', [texts.bread]);
    assert.deepEqual(docs.get('bread')!.chunks[0]!.embedding, plain);
  });
});
