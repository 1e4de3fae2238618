/**
 * Turns a `--model` argument into load options: a manifest name (looked up
 * in the models directory) or a path to a model file or directory.
 */
import { existsSync, statSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.ts';
import type { LoadOptions, ModelRole } from '../engine/index.ts';
import { MODELS } from '../models/manifest.ts';
import { UsageError } from './usage.ts';

/** Load options for `model`, which must have the given role. */
export function resolveModel(model: string, role: ModelRole, config: Config): LoadOptions {
  const entry = MODELS.find((m) => m.name === model);
  if (entry) {
    if (entry.role !== role) throw new UsageError(`model '${model}' is a ${entry.role}, not a ${role}`);
    const dir = path.join(config.modelsDir, entry.name);
    if (!existsSync(dir)) {
      throw new UsageError(`model '${model}' is not downloaded yet; run: candela models pull ${model}`);
    }
    return { name: model, role, path: dir, device: config.device, maxBatch: config.maxBatch, maxQueue: config.maxQueue, prefixCacheMb: config.prefixCacheMb };
  }
  if (existsSync(model)) {
    const isGguf = statSync(model).isFile()
      ? model.endsWith('.gguf')
      : readdirSync(model).some((f) => f.endsWith('.gguf'));
    if (role === 'llm' && !isGguf) throw new UsageError(`'${model}' holds no .gguf file`);
    return { name: path.basename(model).replace(/\.gguf$/, ''), role, path: path.resolve(model), device: config.device };
  }
  const known = MODELS.filter((m) => m.role === role).map((m) => m.name);
  throw new UsageError(`unknown model '${model}': not in the manifest (${known.join(', ') || 'none'}) and not a path`);
}
