/** The answer evaluation's scoring (no model): key terms, refusals, citations, and the question set's own checks. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { containsTerm, isRefusal, loadEvalSet, readCorpus, scoreAnswer, summarize, testSubset, type EvalQuestion } from '../src/eval/answer-eval.ts';
import { ROOT, tempDir } from './helpers/paths.ts';

describe('containsTerm', () => {
  it('matches whole terms, case-insensitively', () => {
    assert.ok(containsTerm('Call `collectDefaultMetrics()` [1].', 'collectdefaultmetrics'));
    assert.ok(containsTerm('Counters only go up.', 'counter'), 'a plural s is allowed');
    assert.ok(!containsTerm('encounter', 'counter'));
    assert.ok(containsTerm('The default is 10.', '10'));
    assert.ok(containsTerm('It takes 10ms.', '10'), 'a number may take a unit');
    assert.ok(containsTerm('node.js v10.16.0 or newer', '10.16.0'));
    for (const text of ['100 bytes', '0.10', '1.10.2', '210']) assert.ok(!containsTerm(text, '10'), text);
    assert.ok(containsTerm('values become [Redacted]', '[Redacted]'));
    assert.ok(containsTerm('about 2% overhead', '2%'));
  });
});

describe('isRefusal', () => {
  it('recognises the ways a model says it does not know', () => {
    for (const a of [
      "I don't know.",
      'I do not know [1].',
      'The sources do not contain this information.',
      'The provided sources don’t mention the compression algorithm.',
      'This is not specified in the sources.',
      'There is no information about that.',
      'I am unable to answer from these sources.',
    ]) {
      assert.ok(isRefusal(a), a);
    }
    for (const a of ['The default is 10 [1].', 'Points are never reset if duration is 0 [2].', 'Use the `remove` option [1].']) assert.ok(!isRefusal(a), a);
  });
});

describe('scoreAnswer', () => {
  const q: EvalQuestion = { id: 'q', question: 'What is the default fieldSize?', expect: ['1048576', '1MB'], doc: 'd' };
  const sources = [
    { id: 'x', text: 'unrelated text' },
    { id: 'd', text: 'fieldSize - Max field value size (in bytes). Default: 1048576 (1MB).' },
  ];
  const base = { sources, finish_reason: 'stop', usage: { completion_tokens: 9, prompt_tokens: 100 }, timings: { ttft_ms: 5 } };

  it('scores an answer in words that cites the source holding the answer', () => {
    const r = scoreAnswer(q, { ...base, answer: 'The default is 1048576 bytes [2].', citations: [{ source: 2, id: 'd' }] }, 12);
    assert.deepEqual([r.correct, r.citationCorrect, r.retrieved, r.bare, r.refused], [true, true, true, false, false]);
    assert.deepEqual(r.citedDocuments, ['d']);
  });

  it('fails citations that point at the wrong source, out of range, or nowhere', () => {
    for (const answer of ['The default is 1MB [1].', 'The default is 1MB [2][3].', 'The default is 1MB.']) {
      const r = scoreAnswer(q, { ...base, answer }, 1);
      assert.equal(r.correct, true, answer);
      assert.equal(r.citationCorrect, false, answer);
    }
  });

  it('counts a bare citation as no answer', () => {
    const r = scoreAnswer(q, { ...base, answer: '[2]' }, 1);
    assert.deepEqual([r.correct, r.bare, r.citationCorrect], [false, true, true]);
  });

  it('summarizes answerable and unanswerable questions apart', () => {
    const un: EvalQuestion = { id: 'u', question: 'Who wrote it?', unanswerable: true };
    const results = [
      scoreAnswer(q, { ...base, answer: 'It is 1MB [2].' }, 10),
      scoreAnswer(q, { ...base, answer: '[1]' }, 20),
      scoreAnswer(un, { ...base, answer: "I don't know." }, 30),
      scoreAnswer(un, { ...base, answer: 'Someone [1].' }, 40),
    ];
    const s = summarize(results);
    assert.deepEqual([s.answerable, s.unanswerable, s.accuracy, s.answeredAndCited, s.bareRate, s.refusalRate], [2, 2, 0.5, 0.5, 0.5, 0.5]);
    assert.equal(s.totalMs.p50, 20);
  });
});

describe('the question set', () => {
  it('is well formed, fits the installed packages, and has 30+ answerable and some unanswerable questions', () => {
    const set = loadEvalSet(path.join(ROOT, 'eval', 'answers', 'questions.json'));
    const docs = readCorpus(set, path.join(ROOT, 'node_modules'));
    assert.equal(docs.length, set.corpus.length);
    assert.ok(set.questions.filter((q) => !q.unanswerable).length >= 30);
    assert.ok(set.questions.filter((q) => q.unanswerable).length >= 5);
  });

  it("has a test subset: every other question of each document, every unanswerable one", () => {
    const set = loadEvalSet(path.join(ROOT, 'eval', 'answers', 'questions.json'));
    const sub = testSubset(set.questions);
    for (const d of set.corpus) {
      const all = set.questions.filter((q) => q.doc === d.id).map((q) => q.id);
      assert.deepEqual(
        sub.filter((q) => q.doc === d.id).map((q) => q.id),
        all.filter((_, i) => i % 2 === 0),
        d.id,
      );
    }
    assert.deepEqual(
      sub.filter((q) => q.unanswerable).map((q) => q.id),
      set.questions.filter((q) => q.unanswerable).map((q) => q.id),
    );
    assert.deepEqual(new Set(sub.flatMap((q) => (q.doc ? [q.doc] : []))), new Set(set.corpus.map((d) => d.id)), 'every document keeps questions');
  });

  it('refuses questions that give their answer away, and corpora of another version', () => {
    const dir = tempDir();
    const file = path.join(dir, 'set.json');
    const corpus = [{ id: 'd', title: 'D', package: 'busboy', version: '1.6.0', file: 'README.md' }];
    writeFileSync(file, JSON.stringify({ corpus, questions: [{ id: 'a', question: 'Is latin1 the default?', expect: ['latin1'], doc: 'd' }] }));
    assert.throws(() => loadEvalSet(file), /gives its answer away/);
    writeFileSync(file, JSON.stringify({ corpus: [{ ...corpus[0], version: '0.0.1' }], questions: [] }));
    assert.throws(() => readCorpus(loadEvalSet(file), path.join(ROOT, 'node_modules')), /written for busboy@0\.0\.1/);
  });
});
