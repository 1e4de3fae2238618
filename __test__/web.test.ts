/**
 * The web page in a real browser (Debian's chromium through playwright-core)
 * against a real Candela: a tiny generated LLM (fast), and all-MiniLM-L6-v2
 * as the embedder so retrieval means something (an uploaded file is found by
 * a question about it). What a person would check: answers stream, the
 * browser's timings add up, sources show, a repeat is a cache hit, Stop
 * cancels in the engine, uploads are listed and cited, chat streams, the
 * status view shows the models, auth asks for a key, and nothing is logged
 * as an error. Each view also fits a 360 px wide screen.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { writeTestModel } from './helpers/fixtures.ts';
import type { RunningServer } from '../src/bootstrap.ts';
import { FileKeyStore } from '../src/services/api-keys.ts';
import { collectErrors, launchChromium } from './helpers/browser.ts';
import { realModel, tempDir } from './helpers/paths.ts';
import { startTinyServer } from './helpers/tiny-server.ts';

const fixtures = tempDir();
const minilm = realModel('all-minilm-l6-v2');
// The stop test needs a generation that outlasts a click: the tiny model writes
// thousands of tokens a second, SmolLM2-135M a few dozen on two cores.
const smollm = realModel('smollm2-135m-instruct');
const MODELS = [
  { name: 'tiny', role: 'llm' as const, path: writeTestModel(fixtures, 'llama', 'q8_0', 4096) },
  { name: 'minilm', role: 'embedder' as const, path: minilm ?? writeTestModel(fixtures, 'bert-mean') },
  ...(smollm ? [{ name: 'smollm2', role: 'llm' as const, path: smollm }] : []),
];
const SEED = [
  ['Ferries', 'The harbour ferry leaves every twenty minutes from pier four and crosses to the island in a quarter of an hour.'],
  ['Bread', 'Sourdough bread rises slowly because wild yeast and lactic bacteria ferment the dough overnight.'],
  ['Volcanoes', 'A shield volcano is built almost entirely of fluid lava flows and has gentle slopes.'],
  ['Chess', 'In chess, castling moves the king two squares towards a rook, which then jumps over the king.'],
  ['Tides', 'Tides are caused mainly by the gravitational pull of the moon on the oceans of the earth.'],
];
const REPLICA = 'web-test-replica';
const TIMEOUT = 20_000;

/** A shown duration (`19 ms`, `1.25 s`) in milliseconds. */
function msOf(text: string): number {
  const m = /^([\d.]+) (ms|s)$/.exec(text.trim());
  assert.ok(m, `not a duration: '${text}'`);
  return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
}

interface SchedulerStats {
  running: number;
  waiting: number;
  generatedTokens: number;
}

async function scheduler(base: string, model: string): Promise<SchedulerStats> {
  const body = (await (await fetch(`${base}/health/stats`)).json()) as { models: { name: string; scheduler?: SchedulerStats }[] };
  return body.models.find((m) => m.name === model)!.scheduler!;
}

/** The Ask view's settings, changed the way a person does (type, then leave the field). */
async function askSettings(page: Page, s: { model?: string; maxTokens?: number; topKRerank?: number; ignoreEos?: boolean; cache?: boolean }): Promise<void> {
  const ask = page.locator('section[aria-labelledby="ask-title"]');
  const details = ask.locator('details.settings');
  if ((await details.getAttribute('open')) === null) await details.locator('summary').click();
  if (s.model !== undefined) await ask.getByLabel('Model').selectOption(s.model ? { value: s.model } : { label: 'server default' });
  if (s.maxTokens !== undefined) {
    await ask.getByLabel('Max tokens', { exact: true }).fill(String(s.maxTokens));
    await ask.getByLabel('Max tokens', { exact: true }).press('Tab');
  }
  if (s.topKRerank !== undefined) {
    await ask.getByLabel('Chunks after rerank').fill(String(s.topKRerank));
    await ask.getByLabel('Chunks after rerank').press('Tab');
  }
  if (s.ignoreEos !== undefined) await ask.getByLabel(/Ignore end of sequence/).setChecked(s.ignoreEos);
  if (s.cache !== undefined) await ask.getByLabel('Use the semantic cache').setChecked(s.cache);
}

async function askQuestion(page: Page, q: string): Promise<void> {
  await page.getByLabel('Question').fill(q);
  await page.getByRole('button', { name: 'Ask', exact: true }).click();
}

/** The newest answer card (answers are listed newest first). */
const newest = (page: Page) => page.getByTestId('answer').first();

/** Fails when the page is wider than the screen (content that forces sideways scrolling). */
async function assertFits(page: Page, what: string): Promise<void> {
  const { scroll, client } = await page.evaluate<{ scroll: number; client: number }>('({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth })');
  assert.ok(scroll <= client, `${what}: the page is ${scroll}px wide on a ${client}px screen`);
}

describe('web page in chromium', () => {
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  let errors: string[];
  const foreign: string[] = [];

  before(async () => {
    server = await startTinyServer(MODELS, { replicaId: REPLICA });
    const res = await fetch(`${server.url}/v1/documents`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ documents: SEED.map(([title, text]) => ({ title, text })) }),
    });
    assert.equal(res.status, 201);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(TIMEOUT);
    errors = collectErrors(page);
    page.on('request', (r) => {
      if (!r.url().startsWith(`${server.url}/`)) foreign.push(r.url());
    });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it('loads from the server itself (no key, no CDN) and shows the Ask view', async () => {
    const res = await page.goto(`${server.url}/`);
    assert.equal(res?.status(), 200);
    assert.match(res?.headers()['content-security-policy'] ?? '', /default-src 'self'/);
    await page.getByRole('heading', { name: 'Ask the documents' }).waitFor();
    // The model picker fills from /v1/models.
    await page.locator('section[aria-labelledby="ask-title"] select option', { hasText: /^tiny$/ }).waitFor({ state: 'attached' });
    assert.deepEqual(foreign, [], 'every request goes to the server itself');
  });

  it('streams an answer: it grows over several observations before done; TTFT ≤ total; sources, ids and server timings shown', async () => {
    await askSettings(page, { maxTokens: 2000, ignoreEos: true, cache: true });
    // Watch the newest answer from inside the page: every change of its text or state.
    // (Browser-side code is passed as text: the tests are type-checked without the DOM library.)
    await page.evaluate(`
      window.growth = [];
      new MutationObserver(() => {
        const card = document.querySelector('[data-testid="answer"]');
        if (!card) return;
        const len = card.querySelector('[data-testid="answer-text"]')?.textContent?.length ?? 0;
        const state = card.querySelector('[data-testid="answer-state"]')?.textContent ?? '';
        const last = window.growth.at(-1);
        if (!last || last.len !== len || last.state !== state) window.growth.push({ len, state });
      }).observe(document.querySelector('.answers'), { childList: true, subtree: true, characterData: true });
    `);
    await askQuestion(page, 'How often does the harbour ferry leave?');
    const card = newest(page);
    await card.getByTestId('answer-state').filter({ hasText: 'done' }).waitFor();
    const growth = await page.evaluate<{ len: number; state: string }[]>('window.growth');
    const streaming = growth.filter((g) => g.state === 'streaming…' && g.len > 0).map((g) => g.len);
    assert.ok(streaming.length >= 2, `the answer grew over ${streaming.length} observations before done: ${JSON.stringify(growth)}`);
    assert.ok(
      streaming.every((len, i) => i === 0 || len > streaming[i - 1]!),
      'it only grows',
    );
    assert.equal(growth.at(-1)?.state, 'done');
    assert.ok(growth.at(-1)!.len >= streaming.at(-1)!);

    const ttft = msOf(await card.getByTestId('ttft').innerText());
    const total = msOf(await card.getByTestId('total').innerText());
    assert.ok(ttft > 0 && ttft <= total, `TTFT ${ttft} ms ≤ total ${total} ms`);
    assert.match(await card.getByTestId('tps').innerText(), /tok\/s$/);
    assert.match(await card.innerText(), /retrieval [\d.]+ m?s/);
    assert.match(await card.getByTestId('request-id').innerText(), /^[0-9a-f-]{36}$/);
    assert.equal(await card.getByTestId('replica-id').innerText(), REPLICA);

    const sources = card.getByTestId('source');
    assert.equal(await sources.count(), 4, 'four sources: the default 4 chunks, one per document here');
    assert.equal(await sources.first().locator('.source-title').innerText(), 'Ferries', 'MiniLM ranks the ferry document first');
    const quote = sources.first().locator('blockquote');
    assert.equal(await quote.isVisible(), false, 'chunk text is collapsed');
    await sources.first().locator('summary').click();
    assert.match(await quote.innerText(), /harbour ferry leaves every twenty minutes/);
    // The chart shows this answer.
    await page.locator('figure.chart').getByText('Last answer (browser-measured)').waitFor();
  });

  it('shows the cache badge, with the matched question, when the same question is asked again', async () => {
    await askQuestion(page, 'How often does the harbour ferry leave?');
    const card = newest(page);
    await card.getByTestId('answer-state').filter({ hasText: 'done' }).waitFor();
    assert.equal(await card.getByTestId('cache-badge').innerText(), 'cache hit: exact');
    assert.match(await card.innerText(), /matched “How often does the harbour ferry leave\?”/);
    assert.ok((await card.getByTestId('answer-text').innerText()).length > 0, 'the cached answer is replayed');
    assert.ok(msOf(await card.getByTestId('ttft').innerText()) <= msOf(await card.getByTestId('total').innerText()));
  });

  it('Stop cancels the generation: the server stops generating and its running count returns to 0', { skip: !smollm && 'smollm2-135m-instruct is not downloaded' }, async () => {
    // One source keeps the prompt (and SmolLM2's prefill) short.
    await askSettings(page, { model: 'smollm2', maxTokens: 4000, topKRerank: 1, ignoreEos: true, cache: false });
    const before = await scheduler(server.url, 'smollm2');
    await askQuestion(page, 'Why does sourdough bread rise slowly?');
    const card = newest(page);
    await card.getByTestId('answer-text').filter({ hasText: /\S/ }).waitFor({ timeout: 60_000 });
    assert.equal((await scheduler(server.url, 'smollm2')).running, 1, 'generating');
    await page.getByRole('button', { name: 'Stop' }).click();
    await card.getByTestId('answer-state').filter({ hasText: 'stopped' }).waitFor();
    let s = await scheduler(server.url, 'smollm2');
    for (let i = 0; i < 100 && s.running > 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      s = await scheduler(server.url, 'smollm2');
    }
    assert.equal(s.running, 0, 'the engine dropped the sequence');
    // With ignore_eos a finished generation has exactly 4,000 tokens: fewer means it was cancelled.
    const generated = s.generatedTokens - before.generatedTokens;
    assert.ok(generated > 0 && generated < 4000, `cancelled after ${generated} of 4,000 tokens`);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await scheduler(server.url, 'smollm2')).generatedTokens, s.generatedTokens, 'no tokens after the stop');
    assert.equal(await page.getByRole('button', { name: 'Ask', exact: true }).isEnabled(), true);
    await askSettings(page, { model: '', topKRerank: 3 });
  });

  it('shows models with role, status, quantization, memory and device; readiness; cache and breaker', async () => {
    await page.getByRole('link', { name: 'Models & status' }).click();
    const row = page.getByTestId('model-row').filter({ hasText: 'tiny' });
    await row.waitFor();
    const cells = await row.locator('td').allInnerTexts();
    assert.equal(cells[0], 'llm');
    assert.equal(cells[1], 'ready');
    assert.match(cells[2]!, /q8_0/i);
    assert.match(cells[4]!, /iB$/, 'memory');
    assert.match(cells[5]!, /cpu/i, 'device');
    assert.equal(cells[6], '0 / 0', 'running / waiting');
    if (smollm) assert.equal(await page.getByTestId('model-row').filter({ hasText: 'smollm2' }).getByTestId('running').innerText(), '0 / 0', 'nothing runs after the stop');
    assert.equal(await page.getByTestId('readiness').innerText(), 'ready');
    assert.match(await page.getByTestId('cache-entries').innerText(), /^[1-9]/, 'the first answer is cached');
    assert.equal(await page.getByTestId('breaker-state').innerText(), 'closed');
  });

  it('uploads files (picked and dropped) with progress, lists them with chunk counts, and a question about one cites it', { skip: !minilm && 'all-minilm-l6-v2 is not downloaded' }, async () => {
    await page.getByRole('link', { name: 'Documents' }).click();
    await page.getByRole('heading', { name: 'Documents' }).waitFor();
    await page.getByTestId('document-row').nth(SEED.length - 1).waitFor();
    const versionBefore = await page.getByTestId('corpus-version').innerText();
    const text = 'The Zorblat reactor on Kepler station is cooled by liquid helium and produces four hundred megawatts for the colony.';
    await page.getByTestId('file-input').setInputFiles({ name: 'zorblat-reactor.md', mimeType: 'text/markdown', buffer: Buffer.from(text) });
    const upload = page.getByTestId('upload').filter({ hasText: 'zorblat-reactor.md' });
    await upload.getByTestId('upload-state').filter({ hasText: /added: \d+ chunks?$/ }).waitFor();
    // Drag and drop: the same path as a person dropping a file on the zone.
    const dropped = await page.evaluateHandle(`(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['Penguins in Antarctica huddle together to keep warm through the polar winter.'], 'penguins.txt', { type: 'text/plain' }));
      return dt;
    })()`);
    await page.locator('.dropzone').dispatchEvent('drop', { dataTransfer: dropped });
    await page.getByTestId('upload').filter({ hasText: 'penguins.txt' }).getByTestId('upload-state').filter({ hasText: /added/ }).waitFor();
    const row = page.getByTestId('document-row').filter({ hasText: 'zorblat-reactor.md' });
    await row.waitFor();
    assert.equal(await upload.getByTestId('upload-state').innerText(), 'added: 1 chunk');
    const bar = upload.locator('progress');
    assert.equal(await bar.getAttribute('value'), await bar.getAttribute('max'), 'the progress bar is full');
    assert.equal(await row.locator('td[data-label="Chunks"]').innerText(), '1', 'one chunk in the list');
    await page.getByTestId('document-row').nth(SEED.length + 1).waitFor();
    assert.notEqual(await page.getByTestId('corpus-version').innerText(), versionBefore, 'the corpus version changed');
    // A file the server does not take shows the reason, not a blank.
    await page.getByTestId('file-input').setInputFiles({ name: 'image.png', mimeType: 'image/png', buffer: Buffer.from([0x89, 0x50]) });
    await page.getByTestId('upload').filter({ hasText: 'image.png' }).getByRole('alert').filter({ hasText: 'only .txt and .md' }).waitFor();

    await page.getByRole('link', { name: 'Ask' }).click();
    await askSettings(page, { maxTokens: 16, ignoreEos: false, cache: false });
    await askQuestion(page, 'How is the Zorblat reactor on Kepler station cooled?');
    const card = newest(page);
    await card.getByTestId('answer-state').filter({ hasText: 'done' }).waitFor();
    assert.equal(await card.getByTestId('source').first().locator('.source-title').innerText(), 'zorblat-reactor.md');

    // Delete it again: the list and the corpus follow.
    await page.getByRole('link', { name: 'Documents' }).click();
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Delete penguins.txt' }).click();
    await page.getByTestId('document-row').filter({ hasText: 'penguins.txt' }).waitFor({ state: 'detached' });
  });

  // SmolLM2 always says something; the tiny random model may end its reply at once.
  it('chat mode streams a reply from /v1/chat/completions with the chosen settings', { skip: !smollm && 'smollm2-135m-instruct is not downloaded' }, async () => {
    await page.getByRole('link', { name: 'Chat' }).click();
    const chat = page.locator('section[aria-labelledby="chat-title"]');
    await chat.locator('summary').click();
    await chat.getByLabel('Model').selectOption('smollm2');
    await chat.getByLabel('Max tokens', { exact: true }).fill('24');
    await chat.getByLabel('Max tokens', { exact: true }).press('Tab');
    await chat.getByLabel('System prompt').fill('Answer briefly.');
    await chat.getByLabel('System prompt').press('Tab');
    await chat.getByLabel('Message').fill('Hello there');
    await chat.getByLabel('Message').press('Enter');
    const reply = chat.getByTestId('turn-assistant').last();
    await reply.getByText(/TTFT [\d.]+ m?s · total [\d.]+ m?s/).waitFor();
    assert.ok((await reply.locator('.bubble').innerText()).length > 0);
    assert.equal(await reply.locator('.who').innerText(), 'smollm2');
    assert.equal(await chat.getByTestId('turn-user').last().innerText().then((t) => t.includes('Hello there')), true);
  });

  it('fits a 360 px wide screen in every view, with keyboard focus visible', async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    for (const view of ['ask', 'chat', 'documents', 'status']) {
      await page.goto(`${server.url}/#${view}`);
      await page.locator('main h2').filter({ visible: true }).first().waitFor();
      await page.waitForLoadState('networkidle');
      await assertFits(page, view);
    }
    await page.goto(`${server.url}/#ask`);
    await page.reload(); // a fresh document: focus starts at the top
    await page.getByRole('heading', { name: 'Ask the documents' }).waitFor();
    await page.keyboard.press('Tab');
    const focused = await page.evaluate<{ text: string; outline: string }>('({ text: document.activeElement.textContent, outline: getComputedStyle(document.activeElement).outlineStyle })');
    assert.equal(focused.text, 'Skip to content', 'the first Tab reaches the skip link');
    assert.notEqual(focused.outline, 'none', 'focus is visible');
  });

  it('logged no console errors, exceptions or failed requests', () => {
    assert.deepEqual(errors, []);
    assert.deepEqual(foreign, []);
  });
});

describe('web page with API keys on', () => {
  let server: RunningServer;
  let browser: Browser;
  let key = '';

  before(async () => {
    const dataDir = tempDir('candela-data-');
    const keysFile = path.join(dataDir, 'keys.json');
    key = (await new FileKeyStore(keysFile).create({ name: 'web', scopes: ['read', 'write'] })).key;
    server = await startTinyServer(MODELS, { dataDir, keysFile, authEnabled: true });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it('the page loads without a key, says a key is needed, and works once one is given', async () => {
    const assets = await fetch(`${server.url}/`);
    assert.equal(assets.status, 200, 'the page itself is open');
    assert.equal((await fetch(`${server.url}/v1/models`)).status, 401, 'the API is not');
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(TIMEOUT);
    const errors = collectErrors(page);
    await page.goto(`${server.url}/`);
    const needed = page.getByTestId('key-needed');
    await needed.waitFor();
    assert.match(await needed.innerText(), /needs an API key/);
    assert.match(await needed.innerText(), /candela keys create/);
    // A question without a key shows the server's message, not a blank.
    await askQuestion(page, 'How often does the ferry leave?');
    await newest(page).getByRole('alert').filter({ hasText: 'this route needs an API key' }).waitFor();

    // A wrong key is refused with the server's reason.
    await page.getByLabel('API key', { exact: true }).fill('cdl_wrong_key');
    await page.getByRole('button', { name: 'Use key' }).click();
    await askQuestion(page, 'How often does the ferry leave?');
    await newest(page).getByRole('alert').filter({ hasText: 'not valid' }).waitFor();

    await page.getByLabel('API key', { exact: true }).fill(key);
    await page.getByRole('button', { name: 'Use key' }).click();
    assert.equal(await page.evaluate<string | null>("sessionStorage.getItem('candela.apiKey')"), key, 'kept in session storage');
    await askSettings(page, { maxTokens: 8, cache: false });
    await askQuestion(page, 'How often does the ferry leave?');
    await newest(page).getByTestId('answer-state').filter({ hasText: 'done' }).waitFor();
    // A question the server refuses shows its reason.
    await askQuestion(page, 'hi');
    await newest(page).getByRole('alert').filter({ hasText: 'at least 3 characters' }).waitFor();
    await page.getByRole('link', { name: 'Models & status' }).click();
    await page.getByTestId('model-row').first().waitFor();
    // Only the refused calls were errors: the browser reports each 401 (and the one 422) response.
    assert.deepEqual(
      errors.filter((e) => !/status of (401|422)/.test(e)),
      [],
    );
    assert.ok(errors.length > 0, 'the 401s were seen');
    await page.close();
  });
});
