/**
 * A Candela server over the tiny RAG models (an LLM, an embedder, a
 * reranker) as its own process, for tests that watch it from outside (its
 * RSS in /proc, its survival under load). Usage: serve-tiny-rag.ts DATA_DIR
 * FIXTURE_DIR; configured by the environment (CANDELA_*) as in production.
 * Prints the URL on stdout once everything is loaded.
 *
 * Run with `--expose-gc` and an IPC channel, it answers the message `'gc'`
 * by collecting garbage and sending back `process.memoryUsage()`, so a test
 * can read a settled heap before it reads VmRSS.
 */
import { loadConfig } from '../../src/config.ts';
import { startTinyServer, tinyRagModels } from './tiny-server.ts';

const [dataDir, fixtureDir] = process.argv.slice(2);
if (!dataDir || !fixtureDir) throw new Error('usage: serve-tiny-rag.ts DATA_DIR FIXTURE_DIR');
const server = await startTinyServer(tinyRagModels(fixtureDir), { ...loadConfig(process.env), host: '127.0.0.1', port: 0, dataDir, demoCorpus: false });
process.on('message', (m) => {
  if (m !== 'gc') return;
  (globalThis as { gc?: () => void }).gc?.();
  process.send?.(process.memoryUsage());
});
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
process.stdout.write(`${server.url}\n`);
