/** The fake LLM server as its own process: prints its URL on stdout; SIGTERM stops it. */
import { startFakeServer } from './fake-llm-server.ts';

const server = await startFakeServer();
process.stdout.write(`${server.url}\n`);
process.once('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
