/**
 * The official `openai` npm package, unmodified, against a real Candela
 * server: chat (stream and not, with usage), completions, embeddings, models,
 * and errors surfacing as the SDK's typed errors.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { writeTestModel } from './helpers/fixtures.ts';
import type { RunningServer } from '../src/bootstrap.ts';
import { tempDir } from './helpers/paths.ts';
import { startTinyServer } from './helpers/tiny-server.ts';

let server: RunningServer;
let client: OpenAI;

before(async () => {
  const dir = tempDir();
  server = await startTinyServer([
    { name: 'tiny', role: 'llm', path: writeTestModel(dir, 'qwen2', 'q8_0') },
    { name: 'tiny-emb', role: 'embedder', path: writeTestModel(dir, 'bert-cls') },
  ]);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await server.close();
});

describe('openai client', () => {
  it('chat.completions.create (non-streaming)', async () => {
    const r = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 8, temperature: 0 });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0]?.message.role, 'assistant');
    assert.equal(typeof r.choices[0]?.message.content, 'string');
    assert.ok(['stop', 'length'].includes(r.choices[0]?.finish_reason ?? ""));
    assert.equal(r.usage!.total_tokens, r.usage!.prompt_tokens + r.usage!.completion_tokens);
  });

  it('chat.completions.create (streaming, include_usage)', async () => {
    const stream = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }],
      max_tokens: 10,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.ok(finish === 'stop' || finish === 'length');
    assert.ok(usage && usage.completion_tokens > 0);
    const whole = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }],
      max_tokens: 10,
      temperature: 0,
    });
    assert.equal(text, whole.choices[0]?.message.content, 'streamed text equals the non-streamed answer');
  });

  it('completions.create, streaming and not', async () => {
    const r = await client.completions.create({ model: 'tiny', prompt: 'The cat', max_tokens: 6, temperature: 0 });
    assert.equal(r.object, 'text_completion');
    const stream = await client.completions.create({ model: 'tiny', prompt: 'The cat', max_tokens: 6, temperature: 0, stream: true });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.text ?? '';
    assert.equal(text, r.choices[0]?.text);
  });

  it('embeddings.create and models.list', async () => {
    const e = await client.embeddings.create({ model: 'tiny-emb', input: ['one', 'two'] });
    assert.equal(e.data.length, 2);
    assert.equal(e.data[0]!.embedding.length, 32);
    const b64 = await client.embeddings.create({ model: 'tiny-emb', input: 'one' });
    // The SDK asks for base64 by default and decodes it: the vectors must agree.
    b64.data[0]!.embedding.forEach((x, i) => assert.ok(Math.abs(x - e.data[0]!.embedding[i]!) < 1e-6));
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids.sort(), ['tiny', 'tiny-emb']);
  });

  it('errors arrive as the SDK typed errors', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'missing', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.NotFoundError && /missing/.test(e.message),
    );
    await assert.rejects(
      client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'word '.repeat(200) }] }),
      (e: unknown) => e instanceof OpenAI.UnprocessableEntityError,
    );
  });
});
