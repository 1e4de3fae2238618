/**
 * GET / — the web page (web/, built into web/dist by scripts/setup.sh), and
 * its assets under /ui/. Served from this server's disk: no CDN, works
 * offline. The page itself needs no key (it asks for one); every API call it
 * makes goes through the same auth as any client's (see access.ts).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { Router } from 'express';
import { PROJECT_ROOT } from '../../config.ts';

/** Where the built page lives by default. */
export const WEB_DIST = path.join(PROJECT_ROOT, 'web', 'dist');

/**
 * Only this origin's scripts, styles and API: a page that tried to load
 * anything from elsewhere would fail loudly instead of depending on it.
 */
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Candela</title></head>
<body><h1>Candela</h1><p>The web page is not built. Run <code>npm run setup</code> (or <code>bash scripts/setup.sh</code>) and reload.
The API is up: see <a href="/docs">/docs</a>.</p></body></html>`;

/** Options of {@link createWebRoutes}. */
export interface WebRoutesOptions {
  /** The built page's directory (default {@link WEB_DIST}). */
  dir?: string;
}

export function createWebRoutes(options: WebRoutesOptions = {}): Router {
  const dir = options.dir ?? WEB_DIST;
  const r = Router();
  r.get('/', (_req, res) => {
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // The page is small and names its assets by content hash: always revalidate it.
    res.setHeader('Cache-Control', 'no-cache');
    const index = path.join(dir, 'index.html');
    if (!existsSync(index)) {
      res.status(503).type('html').send(NOT_BUILT);
      return;
    }
    res.sendFile(index);
  });
  r.use('/ui', express.static(path.join(dir, 'ui'), { index: false, fallthrough: true, setHeaders: (res) => res.setHeader('X-Content-Type-Options', 'nosniff') }));
  return r;
}
