/**
 * Builds the web page (web/) into web/dist with esbuild: one ES module bundle
 * (Preact included, so nothing loads from elsewhere), one stylesheet, the
 * icon, and index.html pointing at them with content hashes (a new build is
 * never mixed with a cached old one). Skips the work when web/dist is newer
 * than every source; `--force` builds anyway.
 *
 * Usage: scripts/node.sh scripts/build-web.ts [--force]
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WEB = path.join(ROOT, 'web');
const DIST = path.join(WEB, 'dist');

/** Newest modification time under `p` (files only), skipping the build output. */
function newest(p: string): number {
  const s = statSync(p);
  if (!s.isDirectory()) return s.mtimeMs;
  let t = 0;
  for (const e of readdirSync(p)) if (path.join(p, e) !== DIST) t = Math.max(t, newest(path.join(p, e)));
  return t;
}

const started = performance.now();
const built = path.join(DIST, 'index.html');
const inputs = [WEB, fileURLToPath(import.meta.url), path.join(ROOT, 'package-lock.json')];
if (!process.argv.includes('--force') && existsSync(built) && statSync(built).mtimeMs > Math.max(...inputs.map(newest))) {
  console.error('web page up to date (web/dist newer than its sources)');
  process.exit(0);
}

const tmp = `${DIST}.tmp-${process.pid}`;
rmSync(tmp, { recursive: true, force: true });
mkdirSync(path.join(tmp, 'ui'), { recursive: true });
const result = await esbuild.build({
  entryPoints: [
    { in: path.join(WEB, 'src', 'main.tsx'), out: 'app' },
    { in: path.join(WEB, 'styles.css'), out: 'app' },
  ],
  outdir: path.join(tmp, 'ui'),
  bundle: true,
  format: 'esm',
  target: ['es2022', 'chrome111', 'firefox115', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning',
  absWorkingDir: ROOT,
});
copyFileSync(path.join(WEB, 'icon.svg'), path.join(tmp, 'ui', 'icon.svg'));
const hash = (file: string) => createHash('sha256').update(readFileSync(path.join(tmp, 'ui', file))).digest('hex').slice(0, 12);
const html = readFileSync(path.join(WEB, 'index.html'), 'utf8').replace('%JS_HASH%', hash('app.js')).replace('%CSS_HASH%', hash('app.css'));
writeFileSync(path.join(tmp, 'index.html'), html);

rmSync(DIST, { recursive: true, force: true });
renameSync(tmp, DIST);
const size = (f: string) => statSync(path.join(DIST, 'ui', f)).size;
console.error(
  `web page built in ${Math.round(performance.now() - started)} ms: web/dist/ui/app.js ${(size('app.js') / 1024).toFixed(1)} KiB, app.css ${(size('app.css') / 1024).toFixed(1)} KiB (${Object.keys(result.metafile.inputs).length} inputs)`,
);
