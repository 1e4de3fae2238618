/** `candela serve`: the HTTP server with the configured models. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.ts';
import { startServer } from '../bootstrap.ts';
import { DEFAULT_MODEL_NAMES, MODELS } from '../models/manifest.ts';
import type { ModelSpec } from '../services/model-service.ts';
import { COMMON_OPTIONS, num, parse, UsageError } from './usage.ts';

/** Model specs for the names in `config.serveModels` (default: the default set). */
export function serveModelSpecs(config: Config): ModelSpec[] {
  const names = config.serveModels.length > 0 ? config.serveModels : DEFAULT_MODEL_NAMES;
  return names.map((name) => {
    const entry = MODELS.find((m) => m.name === name);
    if (!entry) throw new UsageError(`unknown model '${name}' in CANDELA_MODELS (known: ${MODELS.map((m) => m.name).join(', ')})`);
    const dir = path.join(config.modelsDir, name);
    if (!existsSync(dir)) throw new UsageError(`model '${name}' is not downloaded; run: candela models pull ${name}`);
    return { name, role: entry.role, path: dir, device: config.device, maxBatch: config.maxBatch, maxQueue: config.maxQueue, prefixCacheMb: config.prefixCacheMb, uses: entry.uses, queryInstruction: entry.queryInstruction };
  });
}

export async function serveCommand(args: string[], config: Config): Promise<number> {
  const { values } = parse(args, { ...COMMON_OPTIONS, port: { type: 'string' }, host: { type: 'string' } });
  const port = num('port', values.port, { min: 0, max: 65_535, integer: true });
  const effective = Object.freeze({ ...config, port: port ?? config.port, host: values.host ?? config.host });
  const server = await startServer({ config: effective, models: serveModelSpecs(effective) });
  process.stderr.write(`candela: serving on ${server.url}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => void server.close().then(resolve);
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return 0;
}
