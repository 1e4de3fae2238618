/**
 * Which scope each route needs. One rule table, matched on the request path
 * before routing, so a route added later is covered by default (`read`)
 * rather than left open; only the probes and the web page's static files are
 * open.
 *
 *   read   query, generate, embed, rerank, tokenize, list models, docs, stats
 *   write  add and delete documents
 *   admin  load and unload models, flush the cache, manage keys
 */
import type { Scope } from '../services/api-keys.ts';

/** Paths that never need a key: liveness and readiness probes. */
export const PROBE_PATHS: readonly string[] = ['/health', '/health/live', '/health/ready'];

/**
 * The web page (`/`) and its static assets (`/ui/…`) load without a key: the
 * page asks for one and sends it with every API call, which stays guarded.
 */
export function isWebPage(method: string, path: string): boolean {
  return (method === 'GET' || method === 'HEAD') && (path === '/' || (path.startsWith('/ui/') && !path.includes('..')));
}

/** The scope `method path` needs, or null when it is open. */
export function requiredScope(method: string, path: string, options: { metricsAuth: boolean }): Scope | null {
  const p = path.length > 1 ? path.replace(/\/+$/, '') : path;
  if (PROBE_PATHS.includes(p) || isWebPage(method, path)) return null;
  if (p === '/metrics') return options.metricsAuth ? 'read' : null;
  if (/^\/v1\/models\/[^/]+\/(load|unload)$/.test(p)) return 'admin';
  if (p === '/v1/keys' || p.startsWith('/v1/keys/') || p === '/v1/cache' || p.startsWith('/v1/cache/')) return 'admin';
  if ((p === '/v1/documents' || p.startsWith('/v1/documents/')) && method !== 'GET' && method !== 'HEAD') return 'write';
  return 'read';
}
