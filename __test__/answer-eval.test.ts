/**
 * The answer evaluation on the default models (the ones users get): the
 * corpus of eval/answers/questions.json ingested through /v1/documents, and
 * the test subset of its questions (`testSubset`: every other question of each
 * document, every unanswerable one) asked through /v1/query at temperature 0,
 * four at a time. The whole set on the 1.5B model costs more than a 2-core CI
 * machine can spare; `npm run eval:answers` runs it.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatSummary, ingestCorpus, loadEvalSet, readCorpus, runAnswerEval, summarize, testSubset, type QuestionResult } from '../src/eval/answer-eval.ts';
import type { RunningServer } from '../src/bootstrap.ts';
import { MODELS } from '../src/models/manifest.ts';
import { parseCitations } from '../src/services/citations.ts';
import { realModel, ROOT } from './helpers/paths.ts';
import { startTinyServer } from './helpers/tiny-server.ts';

/** The model the thresholds were measured on; it must be the default LLM (a new default needs new measurements). */
const LLM = 'qwen2.5-coder-1.5b-instruct';

/*
 * Thresholds, on the test subset (21 answerable, 6 unanswerable questions).
 * Measured on the 1.5B model with the default prompt (one source per
 * document, 4 chunks kept), retrieving as the default set does (BGE,
 * hybrid): 18/21 answered in words with correct citations, 19/21 accurate,
 * 4/6 refusals, the answer among the sources for 20/21. Before sources were
 * grouped per document (3 chunks, one source each) it was 15/21, 17/21, 4/6;
 * with the prompt before issue 9 (MiniLM dense retrieval): 4/21, 20/21, 3/6.
 * The 0.5B model reaches about 16 % answered and cited and 63 % accuracy on
 * the whole set. Each threshold leaves a margin of one question for CPU
 * differences; the first still fails the old prompt and the 0.5B model, and
 * 17/21 is above the 80 % goal. Cost: 212 s wall on a shared 2-core
 * machine, about 2.1 GB resident.
 */
/** Answered in words with correct citations, of the answerable questions (17 of 21). */
const MIN_ANSWERED_AND_CITED = 17 / 21;
/** Key term in the answer, of the answerable questions (18 of 21). */
const MIN_ACCURACY = 18 / 21;
/** Said it does not know, of the unanswerable questions (3 of 6). */
const MIN_REFUSALS = 3 / 6;
/** A source given to the model holds the answer (19 of 21): a broken index or corpus falls far below. */
const MIN_RETRIEVED = 19 / 21;

const llm = realModel(LLM);
/** Retrieval as `npm start` serves it: the default set's retrieval embedder (BGE) with its query instruction. */
const RETRIEVAL = MODELS.find((m) => m.role === 'embedder' && m.default && m.uses?.includes('retrieval'))!;
const embedder = realModel(RETRIEVAL.name);
const set = loadEvalSet(path.join(ROOT, 'eval', 'answers', 'questions.json'));
const questions = testSubset(set.questions);
let server: RunningServer;
let results: QuestionResult[] = [];

before(async () => {
  if (!llm || !embedder) return;
  server = await startTinyServer(
    [
      { name: LLM, role: 'llm', path: llm },
      { name: RETRIEVAL.name, role: 'embedder', path: embedder, uses: RETRIEVAL.uses, queryInstruction: RETRIEVAL.queryInstruction },
    ],
    { cacheEnabled: false, budget: 0 },
  );
  await ingestCorpus({ baseUrl: server.url, documents: readCorpus(set, path.join(ROOT, 'node_modules')) });
});

after(async () => {
  await server?.close();
});

describe('answer evaluation (default model, default prompt)', { skip: !llm || !embedder ? 'default models not downloaded' : false }, () => {
  it('runs on the default LLM', () => {
    assert.equal(MODELS.find((m) => m.role === 'llm' && m.default)?.name, LLM);
  });

  it('answers in words, cites the source that holds the answer, and says when it does not know', async (t) => {
    const started = performance.now();
    // Four at a time: the engine batches their decoding; answers at temperature 0 do not depend on it.
    results = await runAnswerEval({ baseUrl: server.url, questions, concurrency: 4 });
    const s = summarize(results);
    t.diagnostic(`${formatSummary('default prompt', s)}\n  wall ${((performance.now() - started) / 1000).toFixed(1)} s`);
    for (const r of results) {
      if (r.answerable ? !(r.correct && r.citationCorrect) : !r.refused) t.diagnostic(`${r.id}: ${JSON.stringify(r.answer)}`);
    }
    // The set is about answers, not retrieval: the answer must be among the sources for most questions.
    // Its wording was tuned on MiniLM; with the default set's BGE hybrid retrieval and 4 chunks kept, a
    // source holds the answer for 20/21 of the subset (97 % of the whole set).
    assert.ok(s.retrievalHitRate >= MIN_RETRIEVED, `retrieval found the answer for ${(100 * s.retrievalHitRate).toFixed(0)} % of the questions`);
    assert.ok(s.accuracy >= MIN_ACCURACY, `accuracy: ${(100 * s.accuracy).toFixed(1)} %`);
    assert.ok(s.answeredAndCited >= MIN_ANSWERED_AND_CITED, `answered and cited: ${(100 * s.answeredAndCited).toFixed(1)} %`);
    assert.ok(s.refusalRate >= MIN_REFUSALS, `refused ${(100 * s.refusalRate).toFixed(1)} % of the unanswerable questions`);
  });

  it("maps each answer's cited source numbers to the sources' document ids", (t) => {
    if (results.length === 0) return t.skip('the evaluation did not run');
    let cited = 0;
    for (const r of results) {
      const expected = parseCitations(r.answer, r.sources.length).cited.map((n) => r.sources[n - 1]);
      assert.deepEqual(r.citedDocuments, expected, r.id);
      cited += expected.length;
    }
    assert.ok(cited > 0, 'some answers cite a source');
  });
});
