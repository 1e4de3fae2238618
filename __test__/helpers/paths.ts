/** Paths and fixtures shared by the tests. */
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = path.join(ROOT, 'bin', 'candela');
export const MODELS_DIR = loadConfig().modelsDir;

/** A fresh temporary directory. */
export function tempDir(prefix = 'candela-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * The directory of a real model, or undefined when it is not downloaded
 * (then the test is skipped, unless CANDELA_REQUIRE_MODELS=1 makes it fail).
 */
export function realModel(name: string): string | undefined {
  const dir = path.join(MODELS_DIR, name);
  if (existsSync(dir)) return dir;
  if (process.env['CANDELA_REQUIRE_MODELS'] === '1') throw new Error(`model ${name} is missing from ${MODELS_DIR}`);
  return undefined;
}
