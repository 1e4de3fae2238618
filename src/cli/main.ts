/**
 * The `candela` command line. Errors end in a one-line message and a
 * non-zero exit code, never a stack trace: 2 for usage mistakes, 1 otherwise.
 */
import { ConfigError, loadConfig } from '../config.ts';
import { EngineError } from '../engine/index.ts';
import { embedCommand, rerankCommand } from './encode-commands.ts';
import { generateCommand } from './generate-command.ts';
import { ingestCommand } from './ingest-command.ts';
import { keysCommand } from './keys-command.ts';
import { loadtestCommand } from './loadtest-command.ts';
import { modelsCommand } from './models-command.ts';
import { serveCommand } from './serve-command.ts';
import { HELP, UsageError } from './usage.ts';

/** Pulls --models-dir / --device out of argv wherever they are. */
function commonFlags(argv: string[]): { modelsDir?: string; device?: string } {
  const out: { modelsDir?: string; device?: string } = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const [flag, inline] = a.split('=', 2) as [string, string | undefined];
    const val = inline ?? argv[i + 1];
    if (flag === '--models-dir') out.modelsDir = val;
    if (flag === '--device') out.device = val;
  }
  return out;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '-h' || command === '--help' || command === 'help' || rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(HELP);
    return command ? 0 : 2;
  }
  const config = loadConfig(process.env, commonFlags(rest));
  switch (command) {
    case 'models':
      return modelsCommand(rest, config);
    case 'generate':
      return generateCommand(rest, config);
    case 'embed':
      return embedCommand(rest, config);
    case 'rerank':
      return rerankCommand(rest, config);
    case 'serve':
      return serveCommand(rest, config);
    case 'ingest':
      return ingestCommand(rest, config);
    case 'keys':
      return keysCommand(rest, config);
    case 'loadtest':
      return loadtestCommand(rest, config);
    default:
      throw new UsageError(`unknown command '${command}' (serve, ingest, keys, models, generate, embed, rerank, loadtest)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`candela: ${err.message}\nRun 'candela --help' for usage.\n`);
      process.exitCode = 2;
    } else if (err instanceof EngineError) {
      process.stderr.write(`candela: ${err.code}: ${err.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`candela: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
