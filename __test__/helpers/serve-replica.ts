/**
 * One Candela replica as its own process, configured by the environment as
 * in production (REDIS_URL, CANDELA_*), for tests that run several against
 * one Redis. Usage: serve-replica.ts DATA_DIR LLM_FIXTURE EMBEDDER_DIR.
 * Prints the URL on stdout once models and documents are ready.
 */
import { pino } from 'pino';
import { loadConfig } from '../../src/config.ts';
import { startServer } from '../../src/bootstrap.ts';

const [dataDir, llm, embedder] = process.argv.slice(2);
if (!dataDir || !llm || !embedder) throw new Error('usage: serve-replica.ts DATA_DIR LLM_FIXTURE EMBEDDER_DIR');
const server = await startServer({
  config: Object.freeze({ ...loadConfig(process.env), host: '127.0.0.1', port: 0, dataDir, demoCorpus: false }),
  logger: pino({ level: process.env['CANDELA_LOG_LEVEL'] ?? 'silent' }),
  models: [
    { name: 'tiny', role: 'llm', path: llm },
    { name: 'all-minilm-l6-v2', role: 'embedder', path: embedder },
  ],
});
await server.loaded;
process.stdout.write(`${server.url}\n`);
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
