/**
 * The newcomer's pages stay true: docs/CONFIGURATION.md lists every
 * environment variable `src/config.ts` maps to a setting, and no setting the
 * config no longer reads (outside its "Outside the server's config"
 * section); the README's folder map names every tracked top-level folder
 * and every folder of src/ and native/; the docs the README links exist.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
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

test("the README's folder map names every tracked folder of the top level, src/ and native/", () => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const map = /^## Where things are$[\s\S]*?^```$([\s\S]*?)^```$/m.exec(readme)?.[1];
  assert.ok(map, 'README.md has a "Where things are" section with a folder map');
  const files = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
  const folders = new Set<string>();
  for (const f of files) {
    const parts = f.split('/');
    if (parts.length > 1) folders.add(`${parts[0]}/`);
    if ((parts[0] === 'src' || parts[0] === 'native') && parts.length > 2) folders.add(`${parts[1]}/`);
  }
  const missing = [...folders].filter((d) => !map.includes(d)).sort();
  assert.deepEqual(missing, [], 'folders missing from the README folder map');
});

test('the docs pages the README links exist', () => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const links = [...readme.matchAll(/\]\((docs\/[^)#]+)/g)].map((m) => m[1]!);
  assert.ok(links.length >= 3, 'the README links its docs pages');
  for (const l of new Set(links)) assert.ok(existsSync(path.join(ROOT, l)), `${l} is linked from README.md but missing`);
});
