/**
 * Loads the native addon. This is the only module that touches the `.node`
 * file; everything else goes through the typed wrappers in this folder.
 * The types come from the `.d.ts` that `napi build` generates from the Rust.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type * as Native from '../../native/node/binding.d.ts';

export type NativeBinding = typeof Native;

const addonPath = fileURLToPath(new URL('../../native/node/candela.node', import.meta.url));

let cached: NativeBinding | undefined;

/** The native binding, loaded on first use. */
export function binding(): NativeBinding {
  if (cached) return cached;
  if (!existsSync(addonPath)) {
    throw new Error(`the native engine is not built (${addonPath} is missing); run 'npm run setup'`);
  }
  const require = createRequire(import.meta.url);
  cached = require(addonPath) as NativeBinding;
  return cached;
}
