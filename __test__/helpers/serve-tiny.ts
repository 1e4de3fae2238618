/**
 * A Candela server over tiny generated models, as a separate process (for
 * tests that kill it). Usage: serve-tiny.ts DATA_DIR FIXTURE_DIR [REDIS_URL]
 * (with a Redis URL, documents live in that Redis). Prints the URL on stdout
 * once documents are open.
 */
import { pino } from 'pino';
import { loadConfig } from '../../src/config.ts';
import { writeTestModel } from './fixtures.ts';
import { startServer } from '../../src/bootstrap.ts';

const [dataDir, fixtureDir, redisUrl = ''] = process.argv.slice(2);
if (!dataDir || !fixtureDir) throw new Error('usage: serve-tiny.ts DATA_DIR FIXTURE_DIR [REDIS_URL]');
const server = await startServer({
  config: Object.freeze({ ...loadConfig({}), port: 0, dataDir, demoCorpus: false, redisUrl }),
  logger: pino({ level: 'silent' }),
  models: [{ name: 'tiny-emb', role: 'embedder', path: writeTestModel(fixtureDir, 'bert-mean') }],
});
await server.loaded;
process.stdout.write(`${server.url}\n`);
