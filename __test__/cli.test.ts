/**
 * The `candela` command line as a user runs it: clear messages and non-zero
 * exits for mistakes (never a stack trace), JSON output for scripts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { writeTestModel } from './helpers/fixtures.ts';
import { CLI, realModel, tempDir } from './helpers/paths.ts';

function run(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(CLI, args, { encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertCleanFailure(r: ReturnType<typeof run>, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
}

describe('usage errors', () => {
  it('prints help', () => {
    const r = run('--help');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /candela generate --model M/);
  });

  it('rejects unknown commands, flags and bad values with exit 2', () => {
    assertCleanFailure(run('frobnicate'), 2, /unknown command 'frobnicate'/);
    assertCleanFailure(run('generate', 'hi'), 2, /needs --model/);
    assertCleanFailure(run('generate', '--model', 'x'), 2, /needs a PROMPT/);
    assertCleanFailure(run('generate', '--model', 'x', '--temperature', 'hot', 'hi'), 2, /--temperature must be a number/);
    assertCleanFailure(run('generate', '--model', 'x', '--max-tokens', '0', 'hi'), 2, /--max-tokens must be an integer >= 1/);
    assertCleanFailure(run('generate', '--model', 'x', '--bogus', 'hi'), 2, /Unknown option '--bogus'/);
    assertCleanFailure(run('generate', '--model', 'no-such-model', 'hi'), 2, /unknown model 'no-such-model'/);
    assertCleanFailure(run('generate', '--device', 'tpu', '--model', 'x', 'hi'), 2, /device must be auto, cpu, cuda or cuda:N/);
    assertCleanFailure(run('embed', '--model', 'x'), 2, /at least one TEXT/);
    assertCleanFailure(run('rerank', '--model', 'x', 'doc'), 2, /needs --query/);
    assertCleanFailure(run('models', 'pull', 'no-such-model'), 2, /no-such-model/);
    assertCleanFailure(run('models'), 2, /pull or list/);
  });

  it('a model of the wrong role is a usage error', () => {
    assertCleanFailure(run('embed', '--model', 'smollm2-135m-instruct', 'x'), 2, /is a llm, not a embedder/);
  });
});

describe('commands', () => {
  it('models list --json describes the manifest', () => {
    const r = run('models', 'list', '--json');
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as { name: string; role: string; present: boolean }[];
    assert.ok(rows.some((m) => m.role === 'llm'));
    assert.ok(rows.some((m) => m.role === 'embedder'));
  });

  it('rerank prints JSON scores (tiny generated cross-encoder)', () => {
    const dir = writeTestModel(tempDir(), 'cross-encoder');
    const r = run('rerank', '--model', dir, '--query', 'the cat', 'a cat sat', 'the dog ran');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { scores: number[]; results: { index: number; score: number }[] };
    assert.equal(out.scores.length, 2);
    assert.ok(out.results[0]!.score >= out.results[1]!.score, 'results are sorted by score');
  });

  it('a broken model file fails cleanly with exit 1', () => {
    const bad = tempDir();
    const path = `${bad}/model.gguf`;
    spawnSync('bash', ['-c', `printf 'not a gguf' > ${path}`]);
    assertCleanFailure(run('generate', '--model', path, 'hi'), 1, /LOAD_FAILED/);
  });

  it('generate --json answers with text, usage and timings (SmolLM2)', { skip: !realModel('smollm2-135m-instruct') }, () => {
    const r = run('generate', '--json', '--raw', '--model', 'smollm2-135m-instruct', '--max-tokens', '6', 'The capital of France is');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { text: string; finish_reason: string; usage: { completionTokens: number }; timings: { ttftMs: number } };
    assert.match(out.text, /Paris/);
    assert.ok(out.usage.completionTokens >= 1 && out.usage.completionTokens <= 6);
    assert.ok(out.timings.ttftMs > 0);
  });

  it('generate streams text to stdout (Qwen chat)', { skip: !realModel('qwen2.5-coder-0.5b-instruct') }, () => {
    const r = run('generate', '--model', 'qwen2.5-coder-0.5b-instruct', '--max-tokens', '24', 'What is the capital of Italy? Answer in one short sentence.');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Rome/);
  });

  it('embed prints one vector per text (MiniLM)', { skip: !realModel('all-minilm-l6-v2') }, () => {
    const r = run('embed', '--model', 'all-minilm-l6-v2', 'first text', 'second text');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { dimensions: number; embeddings: number[][] };
    assert.equal(out.dimensions, 384);
    assert.equal(out.embeddings.length, 2);
  });
});
