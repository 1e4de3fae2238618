/**
 * Documents over HTTP: add (single and batch), list, get with chunks,
 * delete, bad input; and durability: a document acknowledged with 201
 * survives `kill -9` of the server process.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { chunkText } from '../src/services/chunker.ts';
import { ROOT, tempDir } from './helpers/paths.ts';

const dataDir = tempDir('candela-data-');
const fixtures = tempDir();
const children: ChildProcess[] = [];

async function spawnServer(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(path.join(ROOT, 'scripts', 'node.sh'), [path.join(ROOT, '__test__', 'helpers', 'serve-tiny.ts'), dataDir, fixtures], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines = createInterface({ input: child.stdout });
  const [url] = (await once(lines, 'line')) as [string];
  return { url, child };
}

after(() => {
  for (const c of children) c.kill('SIGKILL');
});

const post = (url: string, body: unknown) =>
  fetch(`${url}/v1/documents`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('chunker', () => {
  const words = (s: string) => s.split(/\s+/).filter(Boolean).length;
  const count = (texts: string[]) => texts.map(words);

  it('packs sentences into chunks within the budget, with overlap', () => {
    const text = Array.from({ length: 30 }, (_, i) => `Sentence number ${i} has six words.`).join(' ');
    const chunks = chunkText(text, { maxTokens: 20, overlapTokens: 6, countTokens: count });
    assert.ok(chunks.length > 5);
    for (const c of chunks) assert.ok(words(c) <= 20, `chunk over budget: ${c}`);
    for (let i = 1; i < chunks.length; i++) {
      const lastSentence = chunks[i - 1]!.split(/(?<=\.)\s+/).at(-1)!;
      assert.ok(chunks[i]!.startsWith(lastSentence), 'each chunk starts with the end of the previous one');
    }
  });

  it('splits a piece longer than the budget by words', () => {
    const chunks = chunkText('word '.repeat(100).trim(), { maxTokens: 30, overlapTokens: 0, countTokens: count });
    assert.ok(chunks.length >= 4);
    for (const c of chunks) assert.ok(words(c) <= 30);
    assert.equal(chunks.join(' ').split(' ').length, 100);
  });
});

describe('documents API', () => {
  it('adds, lists, gets, deletes; rejects bad input', async () => {
    const { url } = await spawnServer();
    const text = 'Candela serves models. '.repeat(40) + '\n\nIt also stores documents durably.';
    const res = await post(url, { id: 'guide', title: 'Guide', text });
    assert.equal(res.status, 201);
    const added = (await res.json()) as { data: { id: string; chunks: number }[]; corpus_version: string };
    assert.equal(added.data[0]!.id, 'guide');
    assert.ok(added.data[0]!.chunks > 1, 'long text is chunked');
    const batch = await post(url, { documents: [{ text: 'first' }, { text: 'second' }] });
    assert.equal(batch.status, 201);
    const list = (await (await fetch(`${url}/v1/documents`)).json()) as { data: { id: string }[]; corpus_version: string };
    assert.equal(list.data.length, 3);
    assert.notEqual(list.corpus_version, added.corpus_version, 'the corpus version moves on every change');
    const one = (await (await fetch(`${url}/v1/documents/guide`)).json()) as { text: string; chunks: string[] };
    assert.equal(one.text, text);
    assert.equal((await post(url, { id: 'guide', text: 'again' })).status, 409);
    assert.equal((await post(url, { text: '   ' })).status, 422);
    assert.equal((await post(url, { id: '../etc/passwd', text: 'x' })).status, 422);
    assert.equal((await post(url, { documents: Array.from({ length: 101 }, () => ({ text: 'x' })) })).status, 413);
    const del = await fetch(`${url}/v1/documents/${list.data.find((d) => d.id !== 'guide')!.id}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.equal((await fetch(`${url}/v1/documents/nope`, { method: 'DELETE' })).status, 404);
  });

  it('accepts multipart uploads of .txt and .md files', async () => {
    const { url } = await spawnServer();
    const form = new FormData();
    form.append('file', new Blob(['# Upload\n\nUploaded markdown.'], { type: 'text/markdown' }), 'upload-notes.md');
    form.append('file', new Blob(['plain text upload'], { type: 'text/plain' }), 'plain.txt');
    const res = await fetch(`${url}/v1/documents`, { method: 'POST', body: form });
    assert.equal(res.status, 201);
    const added = (await res.json()) as { data: { id: string; title: string }[] };
    assert.deepEqual(added.data.map((d) => d.id).sort(), ['plain', 'upload-notes']);
    const bad = new FormData();
    bad.append('file', new Blob([new Uint8Array([0x50, 0x4b, 0x03, 0x04])]), 'archive.zip');
    assert.equal((await fetch(`${url}/v1/documents`, { method: 'POST', body: bad })).status, 415);
    const latin1 = new FormData();
    latin1.append('file', new Blob([new Uint8Array([0x63, 0x61, 0x66, 0xe9])]), 'latin1.txt');
    assert.equal((await fetch(`${url}/v1/documents`, { method: 'POST', body: latin1 })).status, 400);
    // Multipart is for uploads only: other routes still want JSON.
    assert.equal((await fetch(`${url}/v1/embed`, { method: 'POST', body: form })).status, 415);
  });

  it('an acknowledged document survives kill -9', async () => {
    const first = await spawnServer();
    const res = await post(first.url, { id: 'durable', text: 'This document must survive a crash.' });
    assert.equal(res.status, 201);
    first.child.kill('SIGKILL');
    await once(first.child, 'exit');
    const second = await spawnServer();
    const got = await fetch(`${second.url}/v1/documents/durable`);
    assert.equal(got.status, 200);
    assert.equal(((await got.json()) as { text: string }).text, 'This document must survive a crash.');
    const list = (await (await fetch(`${second.url}/v1/documents`)).json()) as { data: { id: string }[] };
    assert.ok(list.data.some((d) => d.id === 'guide'), 'documents from the earlier server are there too');
  });
});

describe('demo corpus and ingest', () => {
  it('a first start ingests the demo corpus once; candela ingest adds files to a running server', async () => {
    const { startServer } = await import('../src/bootstrap.ts');
    const { loadConfig } = await import('../src/config.ts');
    const { writeTestModel } = await import('./helpers/fixtures.ts');
    const { pino } = await import('pino');
    const { writeFileSync, mkdirSync } = await import('node:fs');
    const data = tempDir('candela-data-');
    const start = () =>
      startServer({
        config: Object.freeze({ ...loadConfig({}), port: 0, dataDir: data, demoCorpus: true }),
        logger: pino({ level: 'silent' }),
        models: [{ name: 'tiny-emb', role: 'embedder', path: writeTestModel(fixtures, 'bert-mean') }],
      });
    let server = await start();
    await server.loaded;
    const ids = async () => ((await (await fetch(`${server.url}/v1/documents`)).json()) as { data: { id: string }[] }).data.map((d) => d.id);
    assert.deepEqual(await ids(), ['candela-readme']);
    assert.equal((await fetch(`${server.url}/v1/documents/candela-readme`, { method: 'DELETE' })).status, 200);
    await server.close();
    server = await start();
    await server.loaded;
    assert.deepEqual(await ids(), [], 'not ingested again after it was deleted');

    const dir = tempDir('candela-corpus-');
    mkdirSync(path.join(dir, 'sub'));
    writeFileSync(path.join(dir, 'a.md'), '# Alpha\n\nFirst file.');
    writeFileSync(path.join(dir, 'sub', 'b notes.txt'), 'Second file.');
    writeFileSync(path.join(dir, 'ignored.bin'), 'x');
    const child = spawn(path.join(ROOT, 'bin', 'candela'), ['ingest', '--url', server.url, '--json', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 0);
    const added = JSON.parse(out) as { id: string; chunks: number }[];
    assert.deepEqual(added.map((a) => a.id).sort(), ['a', 'b-notes']);
    assert.deepEqual((await ids()).sort(), ['a', 'b-notes']);
    await server.close();
  });
});
