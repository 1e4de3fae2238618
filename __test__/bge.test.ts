/**
 * bge-small-en-v1.5 as `models pull` converts it from the ONNX file: the
 * engine's embeddings match onnxruntime's on the original ONNX (computed
 * once by __test__/data/make-bge-reference.py and committed) within 1e-4
 * per component, and the real model ranks related passages above unrelated
 * ones, queries carrying the manifest's instruction.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Engine } from '../src/engine/index.ts';
import { findModel } from '../src/models/manifest.ts';
import { realModel } from './helpers/paths.ts';

interface Reference {
  onnx_sha256: string;
  produced_by: string;
  sentences: { text: string; ids: number[]; embedding: number[] }[];
}

const reference = JSON.parse(readFileSync(new URL('./data/bge-onnxruntime.json', import.meta.url), 'utf8')) as Reference;
const entry = findModel('bge-small-en-v1.5')!;
const bge = realModel('bge-small-en-v1.5');
const engine = new Engine();
const dot = (x: Float32Array, y: Float32Array): number => x.reduce((s, v, i) => s + v * y[i]!, 0);

before(async () => {
  if (bge) await engine.loadModel({ name: 'bge', role: 'embedder', path: bge });
});
after(() => {
  engine.unloadModel('bge');
});

describe('bge-small-en-v1.5 converted from ONNX', { skip: !bge && 'model not downloaded (run: bin/candela models pull bge-small-en-v1.5)' }, () => {
  it('the reference was computed on the ONNX file the manifest pins', () => {
    assert.equal(reference.onnx_sha256, entry.conversion?.input.sha256);
    assert.ok(reference.sentences.length >= 12);
  });

  it('loads with CLS pooling, 384 dimensions and 512 tokens', () => {
    const info = engine.modelInfo('bge');
    assert.equal(info.pooling, 'cls');
    assert.equal(info.dimensions, 384);
    assert.equal(info.contextLength, 512);
  });

  it('counts the tokens the reference tokenizer made', () => {
    const counts = engine.countEmbeddingTokens('bge', reference.sentences.map((s) => s.text));
    assert.deepEqual(counts, reference.sentences.map((s) => s.ids.length));
  });

  it("matches onnxruntime's embeddings within 1e-4 per component", async () => {
    const got = await engine.embed('bge', reference.sentences.map((s) => s.text));
    let worst = 0;
    for (const [i, s] of reference.sentences.entries()) {
      const v = got[i]!;
      assert.equal(v.length, s.embedding.length);
      for (let j = 0; j < v.length; j++) worst = Math.max(worst, Math.abs(v[j]! - s.embedding[j]!));
    }
    process.stderr.write(`bge parity: max abs difference ${worst.toExponential(2)} over ${reference.sentences.length} sentences (reference: ${reference.produced_by})\n`);
    assert.ok(worst <= 1e-4, `max abs difference ${worst}`);
  });

  it('ranks the related passage first for each query (with the query instruction)', async () => {
    const instruction = entry.queryInstruction ?? '';
    assert.match(instruction, /^Represent this sentence for searching relevant passages: $/);
    const passages = [
      'To bake bread, mix flour, water, yeast and salt, let the dough rise, then bake it in a hot oven.',
      'Stock markets fell sharply today as investors worried about rising interest rates.',
      'The mitochondria is the part of the cell that produces energy through respiration.',
      'Kubernetes restarts a container whose liveness probe fails.',
    ];
    const queries = ['How do I bake bread at home?', 'Why did share prices drop?', 'Which organelle makes energy for the cell?', 'What happens when a liveness probe fails?'];
    const p = await engine.embed('bge', passages);
    const q = await engine.embed('bge', queries.map((t) => instruction + t));
    const margins: string[] = [];
    for (const [i, qi] of q.entries()) {
      const scores = p.map((pj) => dot(qi, pj));
      margins.push(`${scores[i]!.toFixed(3)} vs ${Math.max(...scores.filter((_, j) => j !== i)).toFixed(3)}`);
      const best = scores.indexOf(Math.max(...scores));
      assert.equal(best, i, `query ${JSON.stringify(queries[i])}: scores ${scores.map((s) => s.toFixed(3)).join(', ')}`);
      const unrelated = Math.max(...scores.filter((_, j) => j !== i));
      assert.ok(scores[i]! > unrelated + 0.1, `related ${scores[i]!.toFixed(3)} vs best unrelated ${unrelated.toFixed(3)}`);
    }
    process.stderr.write(`bge related vs best unrelated cosine per query: ${margins.join('; ')}\n`);
  });
});
