/** `candela embed` and `candela rerank`: JSON out. */
import type { Config } from '../config.ts';
import { Engine } from '../engine/index.ts';
import { resolveModel } from './resolve-model.ts';
import { COMMON_OPTIONS, parse, UsageError } from './usage.ts';

export async function embedCommand(args: string[], config: Config): Promise<number> {
  const { values, positionals } = parse(args, {
    ...COMMON_OPTIONS,
    model: { type: 'string', short: 'm' },
    'no-truncate': { type: 'boolean' },
  });
  if (!values.model) throw new UsageError('embed needs --model NAME');
  if (positionals.length === 0) throw new UsageError('embed needs at least one TEXT');
  if (positionals.some((t) => t === '')) throw new UsageError('TEXT must not be empty');
  const engine = new Engine({ threads: config.threads });
  const info = await engine.loadModel(resolveModel(values.model, 'embedder', config));
  const vectors = await engine.embed(info.name, positionals, { truncate: !values['no-truncate'] });
  const out = {
    model: info.name,
    dimensions: vectors[0]?.length ?? 0,
    embeddings: vectors.map((v) => Array.from(v)),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  return 0;
}

export async function rerankCommand(args: string[], config: Config): Promise<number> {
  const { values, positionals } = parse(args, {
    ...COMMON_OPTIONS,
    model: { type: 'string', short: 'm' },
    query: { type: 'string', short: 'q' },
    'no-truncate': { type: 'boolean' },
  });
  if (!values.model) throw new UsageError('rerank needs --model NAME');
  if (!values.query) throw new UsageError('rerank needs --query TEXT');
  if (positionals.length === 0) throw new UsageError('rerank needs at least one DOC');
  if (positionals.some((t) => t === '')) throw new UsageError('DOC must not be empty');
  const engine = new Engine({ threads: config.threads });
  const info = await engine.loadModel(resolveModel(values.model, 'reranker', config));
  const scores = await engine.rerank(info.name, values.query, positionals, { truncate: !values['no-truncate'] });
  const results = scores
    .map((score, index) => ({ index, score, document: positionals[index] }))
    .sort((a, b) => b.score - a.score);
  process.stdout.write(JSON.stringify({ model: info.name, query: values.query, scores, results }) + '\n');
  return 0;
}
