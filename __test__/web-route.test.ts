/**
 * The web page's server side without a browser: GET / and /ui/ assets are
 * open while the API stays guarded, the page is served with a strict CSP, an
 * unbuilt page says how to build it, and the page's SSE reader splits
 * Candela's streams as the spec says (chunk boundaries anywhere).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { writeTestModel } from './helpers/fixtures.ts';
import { isWebPage, requiredScope } from '../src/http/access.ts';
import { createWebRoutes } from '../src/http/routes/web.ts';
import type { RunningServer } from '../src/bootstrap.ts';
import { FileKeyStore } from '../src/services/api-keys.ts';
import { SseParser } from '../web/src/sse.ts';
import { tempDir } from './helpers/paths.ts';
import { startTinyServer } from './helpers/tiny-server.ts';

describe('web page routes', () => {
  let server: RunningServer;
  let key = '';
  before(async () => {
    const dataDir = tempDir('candela-data-');
    const keysFile = path.join(dataDir, 'keys.json');
    key = (await new FileKeyStore(keysFile).create({ name: 'reader', scopes: ['read'] })).key;
    server = await startTinyServer([{ name: 'tiny-emb', role: 'embedder', path: writeTestModel(tempDir(), 'bert-mean') }], { dataDir, keysFile, authEnabled: true });
  });
  after(async () => {
    await server?.close();
  });

  it('serves the page and its assets without a key, with a same-origin-only CSP', async () => {
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'.*connect-src 'self'/);
    const html = await page.text();
    const js = /src="(\/ui\/app\.js\?v=[0-9a-f]{12})"/.exec(html)?.[1];
    const css = /href="(\/ui\/app\.css\?v=[0-9a-f]{12})"/.exec(html)?.[1];
    assert.ok(js && css, 'the page names its bundle and stylesheet by content hash');
    for (const [asset, type] of [
      [js, /javascript/],
      [css, /text\/css/],
      ['/ui/icon.svg', /image\/svg/],
    ] as const) {
      const res = await fetch(`${server.url}${asset}`);
      assert.equal(res.status, 200, asset);
      assert.match(res.headers.get('content-type') ?? '', type);
      assert.doesNotMatch(await res.text(), /https?:\/\/(?!www\.w3\.org)[a-z]/i, `${asset} loads nothing from elsewhere`);
    }
    assert.equal((await fetch(`${server.url}/`, { method: 'HEAD' })).status, 200);
  });

  it('keeps the API behind the key the page sends', async () => {
    assert.equal((await fetch(`${server.url}/v1/documents`)).status, 401);
    assert.equal((await fetch(`${server.url}/v1/documents`, { headers: { authorization: `Bearer ${key}` } })).status, 200);
    assert.equal((await fetch(`${server.url}/ui/nothing-here.js`)).status, 404, 'unknown assets are 404, not the page');
    assert.equal((await fetch(`${server.url}/`, { method: 'POST' })).status, 401, 'only GET and HEAD of the page are open');
  });

  it('opens only GET/HEAD of / and /ui/…, never a path that climbs out', () => {
    assert.equal(isWebPage('GET', '/'), true);
    assert.equal(isWebPage('HEAD', '/ui/app.js'), true);
    assert.equal(isWebPage('POST', '/'), false);
    assert.equal(isWebPage('GET', '/ui/../v1/keys'), false);
    assert.equal(requiredScope('GET', '/ui/../v1/keys', { metricsAuth: false }), 'read');
    assert.equal(requiredScope('GET', '/uix', { metricsAuth: false }), 'read');
  });

  it('says how to build the page when it is not built', async () => {
    const app = express().use(createWebRoutes({ dir: tempDir('candela-web-') }));
    const s = app.listen(0, '127.0.0.1');
    await new Promise((r) => s.once('listening', r));
    try {
      const res = await fetch(`http://127.0.0.1:${(s.address() as { port: number }).port}/`);
      assert.equal(res.status, 503);
      assert.match(await res.text(), /npm run setup/);
    } finally {
      s.close();
    }
  });
});

describe('the page’s SSE reader', () => {
  const stream = 'event: meta\ndata: {"k":3}\n\n: keep-alive\n\nevent: token\ndata: {"text":"a"}\r\n\r\ndata: [DONE]\n\ndata: line one\ndata: line two\n\n';
  const expected = [
    { event: 'meta', data: '{"k":3}' },
    { event: 'token', data: '{"text":"a"}' },
    { event: 'message', data: '[DONE]' },
    { event: 'message', data: 'line one\nline two' },
  ];

  it('parses named and unnamed events, skips heartbeats, joins data lines', () => {
    assert.deepEqual(new SseParser().push(stream), expected);
  });

  it('gives the same events whatever the chunk boundaries (every split point, CRLF included)', () => {
    for (let i = 0; i <= stream.length; i++) {
      const p = new SseParser();
      assert.deepEqual([...p.push(stream.slice(0, i)), ...p.push(stream.slice(i))], expected, `split at ${i}`);
    }
  });
});
