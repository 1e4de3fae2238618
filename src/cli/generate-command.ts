/** `candela generate`: stream a completion from an LLM to stdout. */
import type { Config } from '../config.ts';
import { Engine, type SamplingParams } from '../engine/index.ts';
import { resolveModel } from './resolve-model.ts';
import { COMMON_OPTIONS, num, parse, UsageError } from './usage.ts';

export async function generateCommand(args: string[], config: Config): Promise<number> {
  const { values, positionals } = parse(args, {
    ...COMMON_OPTIONS,
    model: { type: 'string', short: 'm' },
    temperature: { type: 'string' },
    'top-p': { type: 'string' },
    'top-k': { type: 'string' },
    'repetition-penalty': { type: 'string' },
    'max-tokens': { type: 'string' },
    seed: { type: 'string' },
    stop: { type: 'string', multiple: true },
    system: { type: 'string' },
    raw: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (!values.model) throw new UsageError('generate needs --model NAME');
  const prompt = positionals.join(' ');
  if (prompt.trim() === '') throw new UsageError('generate needs a PROMPT');
  const params: SamplingParams = {
    temperature: num('temperature', values.temperature, { min: 0, max: 100 }),
    topP: num('top-p', values['top-p'], { min: 0, max: 1 }),
    topK: num('top-k', values['top-k'], { min: 0, integer: true }),
    repetitionPenalty: num('repetition-penalty', values['repetition-penalty'], { min: 0.01, max: 100 }),
    maxTokens: num('max-tokens', values['max-tokens'], { min: 1, max: 1_000_000, integer: true }) ?? 256,
    seed: num('seed', values.seed, { min: 0, max: Number.MAX_SAFE_INTEGER, integer: true }),
    stop: values.stop,
  };
  if (params.topP === 0) throw new UsageError('--top-p must be greater than 0');

  const engine = new Engine({ threads: config.threads });
  const info = await engine.loadModel(resolveModel(values.model, 'llm', config));
  const messages = [
    ...(values.system ? [{ role: 'system', content: values.system }] : []),
    { role: 'user', content: prompt },
  ];
  const ac = new AbortController();
  const onSigint = (): void => ac.abort();
  process.once('SIGINT', onSigint);
  const gen = values.raw
    ? engine.generate(info.name, { prompt }, { params, signal: ac.signal })
    : engine.generate(info.name, { messages }, { params, signal: ac.signal });
  for await (const chunk of gen) {
    if (!values.json) process.stdout.write(chunk.text);
  }
  const result = await gen.result;
  process.off('SIGINT', onSigint);
  if (values.json) {
    process.stdout.write(
      JSON.stringify({
        model: info.name,
        text: result.text,
        finish_reason: result.finishReason,
        usage: result.usage,
        timings: result.timings,
        seed: result.seed,
      }) + '\n',
    );
  } else {
    process.stdout.write('\n');
  }
  return result.finishReason === 'cancelled' ? 130 : 0;
}
