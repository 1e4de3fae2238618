/** A Candela server on a free port over tiny generated models, for tests. */
import { pino } from 'pino';
import { loadConfig, type Config } from '../../src/config.ts';
import { startServer, type RunningServer } from '../../src/http/server.ts';
import type { ModelSpec } from '../../src/services/model-service.ts';
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
