/**
 * docs/CONFIGURATION.md stays complete: every environment variable that
 * `src/config.ts` maps to a setting is listed there, and the page names no
 * `CANDELA_*` setting that the config no longer reads (outside its
 * "Outside the server's config" section).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers/paths.ts';

/** The variable names of config.ts's environment map (`  NAME: 'key',` lines). */
function configVariables(): string[] {
  const src = readFileSync(path.join(ROOT, 'src', 'config.ts'), 'utf8');
  return [...src.matchAll(/^\s+((?:CANDELA|REDIS)_[A-Z0-9_]+): '\w+',$/gm)].map((m) => m[1]!);
}

test('docs/CONFIGURATION.md lists every variable src/config.ts reads, and only those', () => {
  const vars = configVariables();
  assert.ok(vars.length >= 40, `found only ${vars.length} variables in src/config.ts: has its environment map changed shape?`);
  const page = readFileSync(path.join(ROOT, 'docs', 'CONFIGURATION.md'), 'utf8');
  const [settings = '', outside = ''] = page.split(/^## Outside the server's config$/m);
  assert.ok(outside, 'the page has its "Outside the server\'s config" section');
  const missing = vars.filter((v) => !settings.includes(`\`${v}\``));
  assert.deepEqual(missing, [], 'variables missing from docs/CONFIGURATION.md');
  const documented = [...settings.matchAll(/`((?:CANDELA|REDIS)_[A-Z0-9_]+)`/g)].map((m) => m[1]!);
  const stale = documented.filter((v) => !vars.includes(v));
  assert.deepEqual([...new Set(stale)], [], 'variables on the page that src/config.ts does not read');
});
