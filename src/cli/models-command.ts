/** `candela models pull | list`. */
import type { Config } from '../config.ts';
import { MODELS } from '../models/manifest.ts';
import { createProgressReporter, formatMB } from '../models/progress.ts';
import { listModels, pullModels, UnknownModelError } from '../models/pull.ts';
import { COMMON_OPTIONS, parse, UsageError } from './usage.ts';

export async function modelsCommand(args: string[], config: Config): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parse(rest, { ...COMMON_OPTIONS, json: { type: 'boolean' } });
  if (sub === 'pull') {
    let results;
    try {
      results = await pullModels({
        names: positionals.length > 0 ? positionals : undefined,
        modelsDir: config.modelsDir,
        indexUrl: config.pypiIndexUrl,
        npmRegistry: config.npmRegistryUrl,
        mavenRepo: config.mavenRepoUrl,
        onProgress: values.json ? undefined : createProgressReporter(),
      });
    } catch (err) {
      if (err instanceof UnknownModelError) throw new UsageError(err.message);
      throw err;
    }
    if (values.json) {
      process.stdout.write(JSON.stringify(results) + '\n');
    } else {
      for (const r of results) {
        const how = r.status === 'present' ? 'already present, verified' : `pulled ${formatMB(r.downloadedBytes)} MB`;
        process.stderr.write(`${r.name}: ${how} (${formatMB(r.bytes)} MB in ${r.dir})\n`);
      }
    }
    return 0;
  }
  if (sub === 'list') {
    if (positionals.length > 0) throw new UsageError('models list takes no arguments');
    const listing = await listModels(config.modelsDir);
    if (values.json) {
      const byName = new Map(MODELS.map((m) => [m.name, m]));
      const rows = listing.map((l) => {
        const m = byName.get(l.name);
        return { ...l, architecture: m?.architecture, quantization: m?.quantization, description: m?.description };
      });
      process.stdout.write(JSON.stringify(rows) + '\n');
    } else {
      for (const l of listing) {
        const state = l.present ? `present, ${formatMB(l.bytes)} MB` : 'not downloaded';
        process.stdout.write(`${l.name.padEnd(32)} ${l.role.padEnd(9)} ${l.default ? 'default' : '       '}  ${state}\n`);
      }
    }
    return 0;
  }
  throw new UsageError(`models needs a subcommand: pull or list${sub ? ` (got '${sub}')` : ''}`);
}
