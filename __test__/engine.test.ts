/**
 * The TypeScript binding over the native engine: generation as an async
 * iterator, cancellation through AbortSignal, typed errors, concurrency,
 * embeddings and reranking. Tiny generated models test mechanics; the real
 * default models test that answers make sense.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Engine, EngineError, memoryInfo, toEngineError } from '../src/engine/index.ts';
import { binding } from '../src/engine/binding.ts';
import { writeTestModel } from './helpers/fixtures.ts';
import { realModel, tempDir } from './helpers/paths.ts';

const dir = tempDir();
const engine = new Engine();

async function expectCode(p: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  const attempt = typeof p === 'function' ? () => Promise.resolve().then(p) : () => p;
  await assert.rejects(attempt, (err: unknown) => {
    assert.ok(err instanceof EngineError, `expected EngineError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

before(async () => {
  await engine.loadModel({ name: 'tiny', role: 'llm', path: writeTestModel(dir, 'qwen2', 'q8_0') });
  await engine.loadModel({ name: 'tiny-llama', role: 'llm', path: writeTestModel(dir, 'llama', 'q8_0'), maxBatch: 1, maxQueue: 2 });
  await engine.loadModel({ name: 'tiny-bert', role: 'embedder', path: writeTestModel(dir, 'bert-cls') });
  await engine.loadModel({ name: 'tiny-ce', role: 'reranker', path: writeTestModel(dir, 'cross-encoder') });
});

after(() => {
  for (const m of engine.listModels()) engine.unloadModel(m.name);
});

describe('models', () => {
  it('lists loaded models with metadata', () => {
    const tiny = engine.modelInfo('tiny');
    assert.equal(tiny.status, 'ready');
    assert.equal(tiny.role, 'llm');
    assert.equal(tiny.architecture, 'qwen2');
    assert.equal(tiny.contextLength, 128);
    assert.equal(tiny.quantization, 'Q8_0');
    assert.ok((tiny.bytesInMemory ?? 0) > 0 && tiny.bytesOnDisk > 0);
    assert.equal(engine.modelInfo('tiny-bert').pooling, 'cls');
    assert.deepEqual(engine.listModels().map((m) => m.name).sort(), ['tiny', 'tiny-bert', 'tiny-ce', 'tiny-llama']);
  });

  it('reports load failures, unknown models and wrong roles with stable codes', async () => {
    await expectCode(engine.loadModel({ name: 'broken', role: 'llm', path: '/nonexistent.gguf' }), 'LOAD_FAILED');
    assert.equal(engine.modelInfo('broken').status, 'failed');
    await expectCode(() => engine.modelInfo('nope'), 'MODEL_NOT_FOUND');
    await expectCode(engine.embed('tiny', ['x']), 'WRONG_MODEL_ROLE');
    await expectCode(() => engine.generate('tiny-bert', { prompt: 'x' }), 'WRONG_MODEL_ROLE');
    assert.equal(engine.unloadModel('broken'), true);
  });

  it('reports memory figures', () => {
    const m = memoryInfo();
    assert.equal(m.device, 'cpu');
    assert.ok(m.processRssBytes > 0);
    assert.ok(m.cpuFeatures.includes('avx2'), 'built for x86-64-v3');
  });
});

describe('generation', () => {
  it('streams chunks that add up to the final text, with usage and timings', async () => {
    const gen = engine.generate('tiny', { prompt: 'hello' }, { params: { maxTokens: 20, ignoreEos: true } });
    let text = '';
    let tokens = 0;
    for await (const c of gen) {
      text += c.text;
      tokens += c.tokenIds.length;
    }
    const r = await gen.result;
    assert.equal(r.text, text);
    assert.equal(r.usage.completionTokens, 20);
    assert.equal(tokens, 20);
    assert.equal(r.finishReason, 'length');
    assert.equal(r.usage.promptTokens, gen.promptTokens);
    assert.ok(r.timings.totalMs >= r.timings.ttftMs && r.timings.tokensPerSec > 0);
  });

  it('is deterministic for greedy and for a fixed seed', async () => {
    const run = (params: object) => engine.generate('tiny', { prompt: 'abc' }, { params: { maxTokens: 16, ignoreEos: true, ...params } }).collect();
    assert.equal((await run({})).text, (await run({})).text);
    const s = { temperature: 1.2, seed: 42 };
    const [a, b] = await Promise.all([run(s), run(s)]);
    assert.equal(a.text, b.text);
    assert.equal(a.seed, 42);
  });

  it('runs concurrent generations to the text each gives alone', async () => {
    const prompts = ['one', 'two two', 'three three three', 'four'];
    const params = { maxTokens: 12, ignoreEos: true };
    const solo = [];
    for (const p of prompts) solo.push((await engine.generate('tiny', { prompt: p }, { params }).collect()).text);
    const together = await Promise.all(prompts.map((p) => engine.generate('tiny', { prompt: p }, { params }).collect()));
    assert.deepEqual(together.map((r) => r.text), solo);
  });

  it('accepts chat messages and token ids', async () => {
    const chat = await engine.generate('tiny', { messages: [{ role: 'user', content: 'hi' }] }, { params: { maxTokens: 4 } }).collect();
    assert.ok(chat.usage.promptTokens > 5, 'the chat template adds its markers');
    // The fixture carries Qwen2.5's template, which adds its default system turn.
    const rendered = engine.applyChatTemplate('tiny', [{ role: 'user', content: 'hi' }]);
    assert.match(rendered, /^<\|im_start\|>system\nYou are Qwen/);
    assert.ok(rendered.endsWith('<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n'), rendered);
    const ids = engine.tokenize('tiny', 'hello');
    const byIds = await engine.generate('tiny', { tokens: ids }, { params: { maxTokens: 4, ignoreEos: true } }).collect();
    assert.equal(byIds.usage.promptTokens, ids.length);
    assert.equal(engine.detokenize('tiny', ids), 'hello');
  });

  it('an AbortSignal cancels the generation in the engine', async () => {
    const ac = new AbortController();
    const gen = engine.generate('tiny', { prompt: 'go' }, { params: { maxTokens: 120, ignoreEos: true }, signal: ac.signal });
    let seen = 0;
    for await (const _ of gen) {
      if (++seen === 2) ac.abort();
    }
    const r = await gen.result;
    assert.equal(r.finishReason, 'cancelled');
    assert.ok(r.usage.completionTokens < 120, `ran ${r.usage.completionTokens} tokens`);
    const before = engine.schedulerStats('tiny').generatedTokens;
    await new Promise((res) => setTimeout(res, 100));
    assert.equal(engine.schedulerStats('tiny').generatedTokens, before, 'no tokens are produced after cancellation');
  });

  it('leaving the loop early cancels too', async () => {
    const gen = engine.generate('tiny', { prompt: 'go' }, { params: { maxTokens: 120, ignoreEos: true } });
    for await (const _ of gen) break;
    assert.equal((await gen.result).finishReason, 'cancelled');
  });

  it('rejects bad input with typed errors', async () => {
    await expectCode(() => engine.generate('missing', { prompt: 'x' }), 'MODEL_NOT_FOUND');
    await expectCode(() => engine.generate('tiny', { prompt: 'word '.repeat(300) }), 'CONTEXT_OVERFLOW');
    await expectCode(() => engine.generate('tiny', { prompt: 'x' }, { params: { maxTokens: 1000 } }), 'CONTEXT_OVERFLOW');
    await expectCode(() => engine.generate('tiny', { prompt: 'x' }, { params: { temperature: -1 } }), 'INVALID_INPUT');
    await expectCode(() => engine.generate('tiny', { prompt: '' }), 'INVALID_INPUT');
    await expectCode(() => engine.generate('tiny', { tokens: [999999] }), 'INVALID_INPUT');
    await expectCode(() => engine.generate('tiny', { messages: [{ role: 'robot', content: 'x' }] }), 'INVALID_INPUT');
    await expectCode(() => engine.generate('tiny', { prompt: 'x' }, { params: { seed: -3 } }), 'INVALID_INPUT');
  });

  it('native errors carry their code as a property, with the message as the engine wrote it', async () => {
    const raw = binding();
    const e = new raw.Engine();
    const sync = (() => {
      try {
        e.modelInfo('missing');
      } catch (err) {
        return err as Error & { code?: string };
      }
    })();
    assert.equal(sync?.code, 'MODEL_NOT_FOUND');
    assert.equal(sync?.message, "model 'missing' is not loaded", 'no [CODE] prefix to parse');
    const rejected = (await e.loadModel({ name: 'x', role: 'llm', path: '/nonexistent' }).catch((err: unknown) => err)) as Error & { code?: string };
    assert.ok(rejected instanceof Error);
    assert.equal(rejected.code, 'LOAD_FAILED', 'promise rejections too');
    assert.doesNotMatch(rejected.message, /^\[/);
    // A message that merely looks coded is not parsed: only the property counts.
    assert.equal(toEngineError(new Error('[OVERLOADED] not really')).code, 'INTERNAL');
  });

  it('ships no test fixtures in the addon', () => {
    assert.equal((binding() as unknown as Record<string, unknown>)['writeTestModel'], undefined);
  });

  it('a full queue answers OVERLOADED and accepted work still completes', async () => {
    const accepted = [];
    let overloaded = 0;
    for (let i = 0; i < 12; i++) {
      try {
        accepted.push(engine.generate('tiny-llama', { prompt: 'x' }, { params: { maxTokens: 30, ignoreEos: true } }));
      } catch (err) {
        assert.ok(err instanceof EngineError && err.code === 'OVERLOADED');
        overloaded++;
      }
    }
    assert.ok(overloaded > 0);
    for (const g of accepted) assert.equal((await g.collect()).finishReason, 'length');
  });
});

describe('encoders', () => {
  it('embeds texts to unit vectors; batched equals single', async () => {
    const texts = ['the cat sat', 'a dog ran in the park today', 'hello'];
    const vs = await engine.embed('tiny-bert', texts);
    assert.equal(vs.length, 3);
    for (const v of vs) {
      assert.equal(v.length, 32);
      assert.ok(Math.abs(v.reduce((s, x) => s + x * x, 0) - 1) < 1e-4);
    }
    const single = await engine.embed('tiny-bert', [texts[1]!]);
    single[0]!.forEach((x, i) => assert.ok(Math.abs(x - vs[1]![i]!) < 1e-5));
  });

  it('scores rerank pairs in document order and rejects empty input', async () => {
    const scores = await engine.rerank('tiny-ce', 'the cat', ['a cat', 'the dog ran', 'hello']);
    assert.equal(scores.length, 3);
    const again = await engine.rerank('tiny-ce', 'the cat', ['the dog ran']);
    assert.ok(Math.abs(again[0]! - scores[1]!) < 1e-5);
    await expectCode(engine.rerank('tiny-ce', '', ['x']), 'INVALID_INPUT');
    await expectCode(engine.embed('tiny-bert', ['ok', '']), 'INVALID_INPUT');
  });

  it('over-long input is an error unless truncation is asked for', async () => {
    const long = 'cat '.repeat(200);
    await expectCode(engine.embed('tiny-bert', [long], { truncate: false }), 'INVALID_INPUT');
    assert.equal((await engine.embed('tiny-bert', [long], { truncate: true }))[0]!.length, 32);
  });
});

describe('real models', () => {
  const qwen = realModel('qwen2.5-coder-0.5b-instruct');
  const minilm = realModel('all-minilm-l6-v2');

  it('Qwen answers a capital-city question', { skip: !qwen }, async () => {
    await engine.loadModel({ name: 'qwen', role: 'llm', path: qwen! });
    const r = await engine
      .generate('qwen', { messages: [{ role: 'user', content: 'What is the capital of Japan? Answer in one short sentence.' }] }, { params: { maxTokens: 24 } })
      .collect();
    assert.match(r.text, /Tokyo/);
    assert.equal(r.finishReason, 'stop');
  });

  it('MiniLM embeds related sentences closer than unrelated ones', { skip: !minilm }, async () => {
    await engine.loadModel({ name: 'minilm', role: 'embedder', path: minilm! });
    const [a, b, c] = await engine.embed('minilm', ['How do I bake bread?', 'Recipe for baking a loaf of bread', 'Stock markets fell sharply today']);
    const dot = (x: Float32Array, y: Float32Array) => x.reduce((s, v, i) => s + v * y[i]!, 0);
    assert.ok(dot(a!, b!) > dot(a!, c!) + 0.3);
  });
});
