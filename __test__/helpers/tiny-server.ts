/** A Candela server on a free port over tiny generated models, for tests. */
import { pino } from 'pino';
import { loadConfig, type Config } from '../../src/config.ts';
import { startServer, type RunningServer } from '../../src/bootstrap.ts';
import type { ModelSpec } from '../../src/services/model-service.ts';
import { writeTestModel } from './fixtures.ts';
import { tempDir } from './paths.ts';

/** Starts a quiet server with a fresh data directory and no demo corpus; resolves once everything is loaded. */
export async function startTinyServer(models: ModelSpec[], overrides: Partial<Config> = {}): Promise<RunningServer> {
  const server = await startServer({
    config: Object.freeze({ ...loadConfig({}), port: 0, dataDir: tempDir('candela-data-'), demoCorpus: false, ...overrides }),
    logger: pino({ level: 'silent' }),
    models,
  });
  await server.loaded;
  return server;
}

/**
 * The tiny models a RAG route needs, written into `dir`: an LLM with a longer
 * window than the default 128 (the RAG prompt carries the sources), an
 * embedder (`bert-cls` or `bert-mean`) and a reranker.
 */
export function tinyRagModels(dir: string, embedder: 'bert-cls' | 'bert-mean' = 'bert-cls'): ModelSpec[] {
  return [
    { name: 'tiny', role: 'llm', path: writeTestModel(dir, 'llama', 'q8_0', 1024) },
    { name: 'tiny-emb', role: 'embedder', path: writeTestModel(dir, embedder) },
    { name: 'tiny-rerank', role: 'reranker', path: writeTestModel(dir, 'cross-encoder') },
  ];
}
