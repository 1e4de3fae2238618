/**
 * 405 for a known path asked with a method it does not serve, with the
 * `Allow` header listing the ones it does (RFC 9110 §15.5.6); unknown paths
 * stay 404. The methods are read from the app's own routes, so they cannot
 * drift from what is served.
 */
import type { Express } from 'express';

interface RouteLike {
  methods: Record<string, boolean>;
}
interface LayerLike {
  route?: RouteLike;
  handle?: { stack?: LayerLike[] };
  match(path: string): boolean | { path: string };
  path?: string;
}

function collect(stack: readonly LayerLike[], path: string, into: Set<string>): void {
  for (const layer of stack) {
    const m = layer.match(path);
    if (!m) continue;
    if (layer.route) {
      for (const [method, on] of Object.entries(layer.route.methods)) if (on && method !== '_all') into.add(method.toUpperCase());
    } else if (layer.handle?.stack) {
      // A mounted router: match the rest of the path inside it.
      const prefix = typeof m === 'object' ? m.path : (layer.path ?? '');
      collect(layer.handle.stack, path.slice(prefix.length) || '/', into);
    }
  }
}

/** The methods `app` serves at `path` (HEAD wherever GET is), sorted; empty for an unknown path. */
export function allowedMethods(app: Express, path: string): string[] {
  const stack = (app as unknown as { router?: { stack: LayerLike[] } }).router?.stack ?? [];
  const methods = new Set<string>();
  collect(stack, path, methods);
  if (methods.has('GET')) methods.add('HEAD');
  return [...methods].sort();
}
