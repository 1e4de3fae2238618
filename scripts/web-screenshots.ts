/**
 * Screenshots of the web page's main views at desktop (1280 px) and phone
 * (360 px) widths, on real models (SmolLM2-135M answering from the demo
 * corpus, MiniLM retrieving), for a person to look at. Not a test.
 *
 * Usage: scripts/node.sh scripts/web-screenshots.ts OUT_DIR
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import type { Page } from 'playwright-core';
import { loadConfig } from '../src/config.ts';
import { startServer, type RunningServer } from '../src/bootstrap.ts';
import { launchChromium } from '../__test__/helpers/browser.ts';

const out = process.argv[2];
if (!out) {
  console.error('usage: scripts/node.sh scripts/web-screenshots.ts OUT_DIR');
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const config = loadConfig();
const models = [
  { name: 'smollm2-135m-instruct', role: 'llm' as const, path: path.join(config.modelsDir, 'smollm2-135m-instruct') },
  { name: 'all-minilm-l6-v2', role: 'embedder' as const, path: path.join(config.modelsDir, 'all-minilm-l6-v2') },
];

async function serve(overrides: Record<string, unknown> = {}): Promise<RunningServer> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'candela-shots-'));
  const s = await startServer({ config: Object.freeze({ ...config, port: 0, dataDir, keysFile: path.join(dataDir, 'keys.json'), ...overrides }), logger: pino({ level: 'silent' }), models });
  await s.loaded;
  return s;
}

const WIDTHS = { desktop: { width: 1280, height: 860 }, phone: { width: 360, height: 760 } };

async function shoot(page: Page, name: string): Promise<void> {
  for (const [label, size] of Object.entries(WIDTHS)) {
    await page.setViewportSize(size);
    await page.waitForTimeout(150);
    const file = path.join(out!, `${name}-${label}.png`);
    await page.screenshot({ path: file, fullPage: true });
    console.error(`wrote ${file}`);
  }
  await page.setViewportSize(WIDTHS.desktop);
}

const server = await serve();
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: WIDTHS.desktop });
  page.setDefaultTimeout(120_000);
  await page.goto(`${server.url}/`);
  const ask = page.locator('section[aria-labelledby="ask-title"]');
  await ask.locator('details.settings summary').click();
  await ask.getByLabel('Max tokens', { exact: true }).fill('60');
  await ask.getByLabel('Max tokens', { exact: true }).press('Tab');
  await ask.locator('details.settings summary').click();
  for (const q of ['How does Candela cancel a generation?', 'Which models does Candela serve by default?', 'How does Candela cancel a generation?']) {
    await page.getByLabel('Question').fill(q);
    await page.getByRole('button', { name: 'Ask', exact: true }).click();
    await page.getByTestId('answer').first().getByTestId('answer-state').filter({ hasText: /done|failed/ }).waitFor();
  }
  await page.getByTestId('answer').nth(1).getByTestId('source').first().locator('summary').click();
  await shoot(page, 'ask');

  await page.getByRole('link', { name: 'Chat' }).click();
  await page.getByLabel('Message').fill('Write a haiku about candles.');
  await page.getByLabel('Message').press('Enter');
  await page.getByTestId('turn-assistant').last().getByText(/TTFT/).waitFor();
  await shoot(page, 'chat');

  await page.getByRole('link', { name: 'Documents' }).click();
  await page.getByTestId('file-input').setInputFiles({ name: 'release-notes.md', mimeType: 'text/markdown', buffer: Buffer.from('# Release notes\n\nThe web page shows answers as they stream, with the time to first token measured in the browser.\n') });
  await page.getByTestId('upload-state').filter({ hasText: 'added' }).waitFor();
  await shoot(page, 'documents');

  await page.getByRole('link', { name: 'Models & status' }).click();
  await page.getByTestId('model-row').first().waitFor();
  await shoot(page, 'status');
  await page.close();

  const locked = await serve({ authEnabled: true, demoCorpus: false });
  try {
    const p = await browser.newPage({ viewport: WIDTHS.desktop });
    await p.goto(`${locked.url}/`);
    await p.getByTestId('key-needed').waitFor();
    await shoot(p, 'key-needed');
  } finally {
    await locked.close();
  }
} finally {
  await browser.close();
  await server.close();
}
