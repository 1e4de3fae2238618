/**
 * Retrieval quality on real text: the questions of eval/retrieval/questions.json
 * (written for this evaluation and never tuned against an embedder, each with
 * its source document) over documentation shipped in pinned npm packages, asked
 * of POST /v1/search with the real all-MiniLM-L6-v2 and bge-small-en-v1.5,
 * dense and hybrid. Prints recall@3 and MRR@10 per arm (source document, and
 * the stricter answer chunk).
 *
 * Time: ingesting all 50 documents through both embedders takes ~6 min on a
 * 2-core machine, so the test keeps the documents of at most 15,000 characters
 * (33 documents, 32 questions; chosen by length, not by score) and runs in
 * ~2.5 min. `npm run eval:retrieval` measures the whole set.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadEvalSet, readCorpus } from '../src/eval/answer-eval.ts';
import { formatRetrievalTable, limitCorpus, runRetrievalEval, scoreRanks, type EmbedderArm, type RetrievalArmResult } from '../src/eval/retrieval-eval.ts';
import { MODELS_DIR, realModel, ROOT } from './helpers/paths.ts';

const EMBEDDERS: EmbedderArm[] = [
  { label: 'MiniLM', model: 'all-minilm-l6-v2' },
  { label: 'BGE', model: 'bge-small-en-v1.5' },
];
const MAX_DOC_CHARS = 15_000;
const missing = EMBEDDERS.filter((e) => !realModel(e.model)).map((e) => e.model);

describe('recall@k and MRR', () => {
  it('count ranks within k and average reciprocal ranks, 0 for a miss', () => {
    const s = scoreRanks([1, 3, 4, null]);
    assert.equal(s.recall, 0.5);
    assert.equal(s.mrr, (1 + 1 / 3 + 1 / 4) / 4);
    assert.deepEqual(scoreRanks([]), { recall: 0, mrr: 0 });
  });
});

describe('limitCorpus', () => {
  it('keeps the short documents and only the questions about them', () => {
    const docs = [
      { id: 'a', text: 'x'.repeat(10) },
      { id: 'b', text: 'x'.repeat(11) },
    ];
    const qs = [
      { id: 'qa', question: '?', doc: 'a', expect: ['t'] },
      { id: 'qb', question: '?', doc: 'b', expect: ['t'] },
    ];
    const r = limitCorpus(qs, docs, 10);
    assert.deepEqual(r.documents.map((d) => d.id), ['a']);
    assert.deepEqual(r.questions.map((q) => q.id), ['qa']);
  });
});

describe('retrieval quality (real embedders, package docs)', { skip: missing.length ? `models not downloaded: ${missing.join(', ')}` : false }, () => {
  it('finds the source of 30+ untuned questions; BGE >= MiniLM and hybrid-BGE >= dense-BGE on document recall@3', async (t) => {
    const set = loadEvalSet(path.join(ROOT, 'eval', 'retrieval', 'questions.json'));
    const { questions, documents } = limitCorpus(set.questions, readCorpus(set, path.join(ROOT, 'node_modules')), MAX_DOC_CHARS);
    const results = await runRetrievalEval({ questions, documents, embedders: EMBEDDERS, modes: ['dense', 'hybrid'], modelsDir: MODELS_DIR });
    t.diagnostic(`${documents.length} documents\n${formatRetrievalTable(results)}`);
    const arm = (label: string): RetrievalArmResult => results.find((r) => r.label === label)!;
    const [denseMini, hybridMini, denseBge, hybridBge] = ['dense-MiniLM', 'hybrid-MiniLM', 'dense-BGE', 'hybrid-BGE'].map(arm);
    for (const [id, r] of Object.entries(denseBge!.ranks)) {
      const m = denseMini!.ranks[id]!;
      if (r.doc !== m.doc) t.diagnostic(`${id}: source document rank dense-MiniLM ${m.doc ?? '-'}, dense-BGE ${r.doc ?? '-'}`);
    }

    assert.ok(denseMini!.questions >= 30, `${denseMini!.questions} questions`);
    // Floors far above chance (33 documents): a broken embedder, index or fusion falls through them.
    for (const r of results) {
      assert.ok(r.recallAt3 >= 0.8, `${r.label}: source document recall@3 ${r.recallAt3}`);
      assert.ok(r.answerRecallAt3 >= 0.6, `${r.label}: answer chunk recall@3 ${r.answerRecallAt3}`);
    }
    // Measured (closing note of issue 11): dense 0.938 / 0.938 (a tie, 30 of 32 each), hybrid 0.969 / 1.000,
    // dense-BGE 0.938 < hybrid-BGE 1.000. The dense tie has no margin: one question more for MiniLM breaks it.
    assert.ok(denseBge!.recallAt3 >= denseMini!.recallAt3, 'dense: BGE >= MiniLM on source document recall@3');
    assert.ok(hybridBge!.recallAt3 >= hybridMini!.recallAt3, 'hybrid: BGE >= MiniLM on source document recall@3');
    assert.ok(hybridBge!.recallAt3 >= denseBge!.recallAt3, 'BGE: hybrid >= dense on source document recall@3');
  });
});
