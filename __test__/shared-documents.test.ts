/**
 * Shared documents on one real Redis (Debian's redis-server on a free port).
 *
 * Store level (no models): a write through one store reaches another's
 * listener with the same revision; ids are taken atomically across stores; a
 * store opened later loads everything; a replica cut off from Redis (through
 * a TCP proxy) fails writes with DocumentStoreUnavailableError, and when it
 * is back it catches up, reloading when the stream was trimmed past it; a
 * Redis that restarts empty makes every replica reload; a Redis that never
 * held documents is seeded from the data directory, once.
 *
 * Server level (two servers in this process over tiny models, one of them
 * behind the proxy): a document added through A is the top hit of a query
 * through B; deleted through B it is gone from both; both report the same
 * corpus version and revision; a replica started later loads the corpus;
 * with Redis cut off, adds answer 503 + Retry-After while queries keep
 * being answered from memory, and the replica catches up once Redis is back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createDocumentStore, DocumentStoreUnavailableError, type DocumentChange, type StoredDocument } from '../src/services/document-store.ts';
import { FileDocumentStore } from '../src/services/document-store-file.ts';
import { RedisDocumentStore } from '../src/services/document-store-redis.ts';
import type { RunningServer } from '../src/bootstrap.ts';
import type { ModelSpec } from '../src/services/model-service.ts';
import { writeTestModel } from './helpers/fixtures.ts';
import { tempDir } from './helpers/paths.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from './helpers/redis.ts';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.ts';
import { startTinyServer } from './helpers/tiny-server.ts';

const logger = pino({ level: 'silent' });
const skip = skipUnlessRedis();

async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${what}: not within ${ms} ms`);
}

function doc(id: string, text = `text of ${id}`): StoredDocument {
  return { id, title: id, text, created_at: new Date().toISOString(), embedder: 'e', chunks: [{ text, embedding: Float32Array.from([1, 2, 3, Math.random()]) }] };
}

/** A store plus the corpus its listener has built, as the document service would. */
async function openStore(url: string, prefix: string, logMax?: number) {
  const client = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: 1000, retryStrategy: () => 100 });
  client.on('error', () => {});
  const store = new RedisDocumentStore({ redis: client, prefix, logger, ...(logMax ? { logMax } : {}) });
  const docs = new Map<string, StoredDocument>();
  const changes: DocumentChange['op'][] = [];
  await store.open((c) => {
    changes.push(c.op);
    if (c.op === 'put') docs.set(c.doc.id, c.doc);
    else if (c.op === 'delete') docs.delete(c.id);
    else {
      docs.clear();
      for (const d of c.docs) docs.set(d.id, d);
    }
  });
  return {
    store,
    docs,
    changes,
    ids: () => [...docs.keys()].sort(),
    async close() {
      await store.close();
      client.disconnect();
    },
  };
}

describe('Redis document store', { skip }, () => {
  let redis: TestRedis;
  let proxy: TcpProxy;
  before(async () => {
    redis = await startRedis();
    proxy = await startTcpProxy(redis.port, 'redis');
  });
  after(async () => {
    await proxy?.close();
    await redis?.stop();
  });

  it('replicas see each other’s writes in order, with the same revision; ids are taken atomically; a late replica loads all', async () => {
    const a = await openStore(redis.url, 's1:');
    const b = await openStore(redis.url, 's1:');
    assert.equal(await a.store.put(doc('one')), true);
    assert.equal(await a.store.put(doc('two')), true);
    assert.deepEqual(a.ids(), ['one', 'two'], 'a replica reads its own writes at once');
    await eventually('b has both', () => b.ids().join() === 'one,two');
    assert.equal(b.docs.get('one')!.chunks[0]!.embedding.length, 4, 'vectors travel with the document');
    assert.deepEqual(b.docs.get('one'), a.docs.get('one'));
    assert.equal(await b.store.put(doc('one', 'another text'), { ifAbsent: true }), false, 'the id is taken in Redis');
    assert.equal(await b.store.delete('two'), true);
    assert.equal(await b.store.delete('two'), false);
    await eventually('a saw the delete', () => a.ids().join() === 'one');
    await eventually('same revision', () => a.store.revision === b.store.revision);
    assert.equal(a.store.revision, 3, 'three changes: two puts, one delete');
    const late = await openStore(redis.url, 's1:');
    assert.deepEqual(late.ids(), ['one']);
    assert.equal(late.store.revision, 3);
    assert.deepEqual(late.changes, ['reset']);
    await Promise.all([a.close(), b.close(), late.close()]);
  });

  it('a replica cut off from Redis refuses writes, then catches up; past the stream’s trim it reloads', async () => {
    const a = await openStore(redis.url, 's2:', 5);
    const b = await openStore(proxy.url, 's2:', 5);
    await a.store.put(doc('before'));
    await eventually('b has it', () => b.docs.has('before'));

    proxy.cut();
    await assert.rejects(b.store.put(doc('during')), DocumentStoreUnavailableError);
    assert.deepEqual(b.ids(), ['before'], 'b keeps its corpus in memory');
    await a.store.put(doc('short-outage'));
    proxy.restore();
    await eventually('b caught up from the stream', () => b.docs.has('short-outage'));
    assert.deepEqual(b.changes.filter((c) => c === 'reset').length, 1, 'a short outage needs no reload');

    proxy.cut();
    // Far more changes than the stream keeps (MAXLEN ~ trims whole nodes of 100 entries).
    for (let i = 0; i < 250; i++) await a.store.put(doc(`bulk-${i}`));
    for (let i = 0; i < 250; i += 2) await a.store.delete(`bulk-${i}`);
    const raw = new Redis(redis.url);
    const first = (await raw.xrange('s2:log', '-', '+', 'COUNT', 1))[0]!;
    raw.disconnect();
    assert.ok(Number(first[1][first[1].indexOf('rev') + 1]) > b.store.revision + 1, 'the stream was trimmed past b');
    proxy.restore();
    await eventually('b reloaded to a’s corpus', () => b.store.revision === a.store.revision && b.ids().join() === a.ids().join());
    assert.equal(b.changes.filter((c) => c === 'reset').length, 2, 'b reloaded once');
    assert.equal(a.docs.size, 2 + 125);
    await Promise.all([a.close(), b.close()]);
  });

  it('an unreadable value in Redis is skipped (and logged), not a replica that cannot start', async () => {
    const a = await openStore(redis.url, 's5:');
    await a.store.put(doc('fine'));
    await a.store.put(doc('broken'));
    const raw = new Redis(redis.url);
    await raw.set('s5:d:broken', '{"id": "broken", "chunks": [');
    raw.disconnect();
    const late = await openStore(redis.url, 's5:');
    assert.deepEqual(late.ids(), ['fine']);
    assert.equal(late.store.revision, 2);
    await Promise.all([a.close(), late.close()]);
  });

  it('turning Redis on keeps the corpus: an empty Redis is seeded from the data directory, once', async () => {
    const dataDir = tempDir('candela-data-');
    const files = new FileDocumentStore(dataDir);
    await files.open(() => {});
    await files.put(doc('from-disk-1'));
    await files.put(doc('from-disk-2'));
    const client = new Redis(redis.url);
    const open = async () => {
      const store = createDocumentStore({ dataDir, redis: client, redisPrefix: 's4:', logger });
      const ids: string[] = [];
      await store.open((c) => c.op === 'reset' && ids.push(...c.docs.map((d) => d.id)));
      return { store, ids };
    };
    const first = await open();
    assert.equal(first.store.backend, 'redis');
    assert.equal(first.store.revision, 2);
    assert.equal(await first.store.delete('from-disk-1'), true);
    await first.store.close();
    const second = await open();
    assert.deepEqual(second.ids, ['from-disk-2'], 'loaded from Redis, not imported again');
    assert.equal(second.store.revision, 3);
    await second.store.close();
    client.disconnect();
  });

  it('a Redis that restarts empty makes every replica reload (to what Redis holds)', async () => {
    const own = await startRedis();
    const a = await openStore(own.url, 's3:');
    const b = await openStore(own.url, 's3:');
    await a.store.put(doc('lost'));
    await eventually('b has it', () => b.docs.has('lost'));
    await own.restart(); // no persistence: the data is gone
    await eventually('a reloaded', () => a.docs.size === 0 && a.store.revision === 0);
    await eventually('b reloaded', () => b.docs.size === 0 && b.store.revision === 0);
    await eventually('a can write again', async () => a.store.put(doc('after')).catch(() => false));
    await eventually('b follows again', () => b.docs.has('after') && b.store.revision === a.store.revision);
    await Promise.all([a.close(), b.close()]);
    await own.stop();
  });
});

describe('two replicas on one Redis serve one corpus', { skip }, () => {
  let redis: TestRedis;
  let proxy: TcpProxy;
  let models: ModelSpec[];
  const servers: RunningServer[] = [];
  const replica = async (url: string): Promise<string> => {
    // No reranker: the top hit is the retrieval's own. No cache: every query retrieves.
    const s = await startTinyServer(models, { redisUrl: url, redisPrefix: 'h:', cacheEnabled: false });
    servers.push(s);
    return s.url;
  };
  before(async () => {
    redis = await startRedis();
    proxy = await startTcpProxy(redis.port, 'redis');
    const dir = tempDir();
    models = [
      { name: 'tiny', role: 'llm', path: writeTestModel(dir, 'llama', 'q8_0', 4096) },
      { name: 'tiny-emb', role: 'embedder', path: writeTestModel(dir, 'bert-mean') },
    ];
  });
  after(async () => {
    for (const s of servers) await s.close();
    await proxy?.close();
    await redis?.stop();
  });

  const post = (base: string, body: unknown) => fetch(`${base}/v1/documents`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const corpus = async (base: string) =>
    (await (await fetch(`${base}/v1/documents`)).json()) as { data: { id: string }[]; corpus_version: string; corpus_revision: number };
  const topHit = async (base: string, query: string) => {
    const res = await fetch(`${base}/v1/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, max_tokens: 2, top_k_retrieve: 3, cache: false }) });
    assert.equal(res.status, 200, await res.clone().text());
    return ((await res.json()) as { sources: { id: string }[] }).sources[0]?.id;
  };
  const TEXTS = {
    volcano: 'Volcanoes erupt molten rock called lava from deep inside the earth.',
    violin: 'A violin has four strings and is played with a bow made of horsehair.',
    tax: 'Quarterly tax filings are due on the fifteenth day after the quarter ends.',
  };

  it('added through A, retrieved through B; deleted through B, gone from both; same version; a late replica loads it', async () => {
    const a = await replica(redis.url);
    const b = await replica(redis.url);
    const added = await post(a, { documents: Object.entries(TEXTS).map(([id, text]) => ({ id, text })) });
    assert.equal(added.status, 201);
    const addedBody = (await added.json()) as { corpus_revision: number };
    assert.equal(addedBody.corpus_revision, 3, 'the answer carries the revision of the add');
    await eventually('B caught up', async () => (await corpus(b)).corpus_revision === 3);
    for (const [id, text] of Object.entries(TEXTS)) assert.equal(await topHit(b, text), id, `B retrieves '${id}' added through A`);

    assert.equal((await fetch(`${b}/v1/documents/violin`, { method: 'DELETE' })).status, 200);
    assert.equal((await fetch(`${b}/v1/documents/violin`)).status, 404);
    await eventually('gone from A', async () => (await fetch(`${a}/v1/documents/violin`)).status === 404);
    assert.notEqual(await topHit(a, TEXTS.violin), 'violin');
    const [ca, cb] = [await corpus(a), await corpus(b)];
    assert.deepEqual(ca.data.map((d) => d.id).sort(), ['tax', 'volcano']);
    assert.equal(ca.corpus_version, cb.corpus_version);
    assert.equal(ca.corpus_revision, 4);
    assert.equal(cb.corpus_revision, 4);
    assert.equal((await post(b, { id: 'tax', text: 'taken' })).status, 409);
    const stats = async (base: string) => ((await (await fetch(`${base}/health/stats`)).json()) as { documents: Record<string, unknown> }).documents;
    assert.deepEqual(await stats(a), { store: 'redis', count: 2, corpus_version: ca.corpus_version, corpus_revision: 4 });
    assert.deepEqual(await stats(b), await stats(a));

    const c = await replica(redis.url);
    const cc = await corpus(c);
    assert.deepEqual(cc.data.map((d) => d.id).sort(), ['tax', 'volcano']);
    assert.equal(cc.corpus_version, ca.corpus_version);
    assert.equal(cc.corpus_revision, 4);
    assert.equal(await topHit(c, TEXTS.volcano), 'volcano');
  });

  it('Redis away from a replica: adds answer 503 + Retry-After, queries are answered from memory, and it catches up', async () => {
    const a = await replica(redis.url);
    const b = await replica(proxy.url);
    await eventually('B loaded', async () => (await corpus(b)).corpus_revision === (await corpus(a)).corpus_revision);
    proxy.cut();
    const refused = await post(b, { id: 'during', text: 'Written while Redis is away.' });
    assert.equal(refused.status, 503);
    assert.ok(Number(refused.headers.get('retry-after')) > 0);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'document_store_unavailable');
    assert.equal(await topHit(b, TEXTS.volcano), 'volcano', 'search keeps serving from memory');
    assert.equal((await post(a, { id: 'meanwhile', text: 'Glaciers carve valleys over thousands of years.' })).status, 201);
    proxy.restore();
    await eventually('B caught up', async () => (await corpus(b)).corpus_revision === (await corpus(a)).corpus_revision);
    assert.equal(await topHit(b, 'Glaciers carve valleys over thousands of years.'), 'meanwhile');
    assert.equal((await corpus(b)).corpus_version, (await corpus(a)).corpus_version);
  });
});
