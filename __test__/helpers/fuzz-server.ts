/**
 * The server the OpenAPI fuzz suite drives: every model role over tiny
 * generated models, documents open, cache on, and (with `auth`) API keys on
 * with one key holding every scope. Run on its own it prints the URL and key
 * and serves until killed: `fuzz-server.ts [--auth]`.
 */
import path from 'node:path';
import { FileKeyStore } from '../../src/services/api-keys.ts';
import type { RunningServer } from '../../src/bootstrap.ts';
import { writeTestModel } from './fixtures.ts';
import { tempDir } from './paths.ts';
import { startTinyServer, tinyRagModels } from './tiny-server.ts';

/** A running fuzz target. */
export interface FuzzServer {
  server: RunningServer;
  /** A key with every scope (auth on), or undefined (auth off). */
  key: string | undefined;
}

/** Starts the fuzz target on a free loopback port; resolves once every model is loaded. */
export async function startFuzzServer(options: { auth: boolean }): Promise<FuzzServer> {
  const dataDir = tempDir('candela-fuzz-data-');
  const keysFile = path.join(dataDir, 'keys.json');
  let key: string | undefined;
  if (options.auth) {
    const store = new FileKeyStore(keysFile);
    key = (await store.create({ name: 'fuzz', scopes: ['read', 'write', 'admin'] })).key;
    await store.close();
  }
  const dir = tempDir('candela-fuzz-models-');
  // The RAG prompt carries sources from whatever documents the fuzzer added: a
  // window of 4096 lets most queries be answered rather than refused with
  // context_overflow; the wall-clock limit keeps long generations short.
  const models = tinyRagModels(dir).map((m) => (m.role === 'llm' ? { ...m, path: writeTestModel(dir, 'llama', 'q8_0', 4096) } : m));
  const server = await startTinyServer(models, {
    dataDir,
    keysFile,
    host: '127.0.0.1',
    authEnabled: options.auth,
    metricsAuth: options.auth,
    generationTimeoutMs: 2000,
  });
  return { server, key };
}

if (import.meta.main) {
  const { server, key } = await startFuzzServer({ auth: process.argv.includes('--auth') });
  process.stdout.write(`${JSON.stringify({ url: server.url, key })}\n`);
}
