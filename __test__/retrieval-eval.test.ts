/**
 * Retrieval quality on real text: the answer-eval questions (38, each with a
 * known source document) over the answer-eval corpus plus distractors, all
 * documentation shipped in pinned npm packages, asked of POST /v1/search
 * with the real all-MiniLM-L6-v2, dense and hybrid. Prints recall@3 and MRR
 * per arm (source document, and the stricter answer chunk).
 *
 * EMBEDDERS is the parameter: another embedder is one more entry, and its
 * assertions go beside the MiniLM ones below.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadEvalSet, readCorpus } from '../src/eval/answer-eval.ts';
import { formatRetrievalTable, runRetrievalEval, scoreRanks, type EmbedderArm, type RetrievalArmResult } from '../src/eval/retrieval-eval.ts';
import { MODELS_DIR, realModel, ROOT } from './helpers/paths.ts';

const EMBEDDERS: EmbedderArm[] = [{ label: 'MiniLM', model: 'all-minilm-l6-v2' }];
const missing = EMBEDDERS.filter((e) => !realModel(e.model)).map((e) => e.model);

describe('recall@k and MRR', () => {
  it('count ranks within k and average reciprocal ranks, 0 for a miss', () => {
    const s = scoreRanks([1, 3, 4, null]);
    assert.equal(s.recall, 0.5);
    assert.equal(s.mrr, (1 + 1 / 3 + 1 / 4) / 4);
    assert.deepEqual(scoreRanks([]), { recall: 0, mrr: 0 });
  });
});

describe('retrieval quality (real embedders, package docs)', { skip: missing.length ? `models not downloaded: ${missing.join(', ')}` : false }, () => {
  it('finds the source of 30+ questions; hybrid is at least as good as dense where it holds', async (t) => {
    const nodeModules = path.join(ROOT, 'node_modules');
    const set = loadEvalSet(path.join(ROOT, 'eval', 'answers', 'questions.json'));
    const documents = [...readCorpus(set, nodeModules), ...readCorpus(loadEvalSet(path.join(ROOT, 'eval', 'retrieval', 'distractors.json')), nodeModules)];
    const results = await runRetrievalEval({ questions: set.questions, documents, embedders: EMBEDDERS, modes: ['dense', 'hybrid'], modelsDir: MODELS_DIR });
    t.diagnostic(`${documents.length} documents\n${formatRetrievalTable(results)}`);
    const arm = (label: string): RetrievalArmResult => results.find((r) => r.label === label)!;
    const dense = arm('dense-MiniLM');
    const hybrid = arm('hybrid-MiniLM');
    for (const [id, r] of Object.entries(hybrid.ranks)) {
      const d = dense.ranks[id]!;
      if (r.answer !== d.answer) t.diagnostic(`${id}: answer chunk rank dense ${d.answer ?? '-'}, hybrid ${r.answer ?? '-'}`);
    }

    assert.ok(dense.questions >= 30, `${dense.questions} questions`);
    // Floors well above chance (12 documents): a broken embedder, index or fusion falls through them.
    for (const r of [dense, hybrid]) {
      assert.ok(r.recallAt3 >= 0.9, `${r.label}: source document recall@3 ${r.recallAt3}`);
      assert.ok(r.answerRecallAt3 >= 0.85, `${r.label}: answer chunk recall@3 ${r.answerRecallAt3}`);
    }
    // Measured (see the closing note of issue 11): hybrid ties dense on document recall@3 and ranks the
    // answer chunk higher (MRR); on answer-chunk recall@3 it loses one question of 38, so that is not asserted.
    assert.ok(hybrid.recallAt3 >= dense.recallAt3, 'hybrid >= dense on source document recall@3');
    assert.ok(hybrid.answerMrr >= dense.answerMrr, 'hybrid >= dense on answer chunk MRR');
  });
});
