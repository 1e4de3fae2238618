/**
 * Retrieval logic without models: reciprocal rank fusion, the BM25 index
 * (formula, IDF, length normalisation, saturation, add/replace/remove) and
 * its analyzer.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyze, stemS } from '../src/services/retrieval/analyzer.ts';
import { Bm25Index } from '../src/services/retrieval/bm25.ts';
import { reciprocalRankFusion, RRF_K } from '../src/services/retrieval/rrf.ts';

const close = (a: number, b: number, eps = 1e-12) => assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);

describe('reciprocal rank fusion', () => {
  it('sums 1/(k + rank) over the lists, with k = 60 by default', () => {
    const fused = reciprocalRankFusion([
      ['a', 'b', 'c'],
      ['c', 'a'],
    ]);
    assert.equal(RRF_K, 60);
    assert.deepEqual(fused.map((f) => f.id), ['a', 'c', 'b']);
    close(fused[0]!.score, 1 / 61 + 1 / 62);
    close(fused[1]!.score, 1 / 63 + 1 / 61);
    close(fused[2]!.score, 1 / 62);
    assert.deepEqual(fused[0]!.ranks, [1, 2]);
    assert.deepEqual(fused[2]!.ranks, [2, null]);
  });

  it('rewards agreement: an item second in both lists beats one first in a single list', () => {
    const fused = reciprocalRankFusion([
      ['x', 'both'],
      ['y', 'both'],
    ]);
    assert.equal(fused[0]!.id, 'both');
  });

  it('breaks ties by best single rank, then id; counts a repeated id once; honours k', () => {
    const tie = reciprocalRankFusion([
      ['b', 'a'],
      ['a', 'b'],
    ]);
    assert.deepEqual(tie.map((f) => f.id), ['a', 'b']);
    const dup = reciprocalRankFusion([['a', 'a', 'b']]);
    close(dup[0]!.score, 1 / 61);
    close(dup[1]!.score, 1 / 63);
    close(reciprocalRankFusion([['a']], 0)[0]!.score, 1);
    assert.deepEqual(reciprocalRankFusion([]), []);
    assert.throws(() => reciprocalRankFusion([['a']], -1), RangeError);
  });
});

describe('analyzer', () => {
  it('lower-cases, splits on non-alphanumerics, drops stop words and strips plurals', () => {
    assert.deepEqual(analyze('What are the Tokens of GGUF-files?'), ['token', 'gguf', 'file']);
    assert.deepEqual(analyze('queries, classes and buses'), ['query', 'classe', 'buse']);
    assert.equal(stemS('status'), 'status');
    assert.equal(stemS('glass'), 'glass');
    assert.equal(stemS('its'), 'its');
  });
});

describe('BM25 index', () => {
  const corpus: Record<string, string> = {
    d1: 'the quick brown fox jumps over the lazy dog',
    d2: 'a quick brown dog',
    d3: 'foxes and dogs and more dogs and many other animals in a very long text about animals',
    d4: 'redis stream replication',
  };
  const build = () => {
    const ix = new Bm25Index();
    for (const [id, text] of Object.entries(corpus)) ix.add(id, text);
    return ix;
  };

  it('scores with Okapi BM25 (k1 1.2, b 0.75, Lucene IDF)', () => {
    const ix = build();
    const docs = Object.fromEntries(Object.entries(corpus).map(([id, t]) => [id, analyze(t)]));
    const n = 4;
    const avgdl = Object.values(docs).reduce((s, d) => s + d.length, 0) / n;
    const expected = (terms: string[], id: string) =>
      terms.reduce((sum, t) => {
        const df = Object.values(docs).filter((d) => d.includes(t)).length;
        const tf = docs[id]!.filter((x) => x === t).length;
        if (tf === 0) return sum;
        const idf = Math.log(1 + (n - df + 0.5) / (df + 0.5));
        return sum + (idf * tf * 2.2) / (tf + 1.2 * (0.25 + (0.75 * docs[id]!.length) / avgdl));
      }, 0);
    const hits = ix.search('brown dogs', 10);
    assert.deepEqual(hits.map((h) => h.id).sort(), ['d1', 'd2', 'd3']);
    for (const h of hits) close(h.score, expected(['brown', 'dog'], h.id), 1e-9);
    // d2 is shortest and has both terms.
    assert.equal(hits[0]!.id, 'd2');
  });

  it('ranks a rare term above a common one and leaves out chunks sharing no term', () => {
    const ix = build();
    const hits = ix.search('dog replication', 10);
    assert.equal(hits[0]!.id, 'd4', 'the term found in one chunk outweighs the one found in three');
    assert.deepEqual(ix.search('unrelated words', 10), []);
    assert.deepEqual(ix.search('the and of', 10), [], 'stop words alone match nothing');
  });

  it('saturates term frequency and normalises by length', () => {
    const ix = new Bm25Index();
    ix.add('once', 'cache miss');
    ix.add('many', 'cache cache cache cache cache cache cache cache miss');
    ix.add('filler', 'nothing here at all');
    const [a, b] = [ix.search('cache', 2).find((h) => h.id === 'once')!, ix.search('cache', 2).find((h) => h.id === 'many')!];
    assert.ok(b.score > a.score, 'more occurrences score higher');
    assert.ok(b.score < 2 * a.score, 'but eight occurrences score far less than eight times one');
  });

  it('replaces, removes and keeps statistics in step; top-k is bounded and ordered', () => {
    const ix = build();
    ix.add('d4', 'brown brown brown');
    assert.equal(ix.size, 4);
    assert.equal(ix.search('brown', 1)[0]!.id, 'd4');
    assert.deepEqual(ix.search('redis', 5), []);
    assert.equal(ix.remove('d4'), true);
    assert.equal(ix.remove('d4'), false);
    assert.equal(ix.size, 3);
    assert.ok(ix.search('brown', 5).every((h) => h.id !== 'd4'));
    const fresh = new Bm25Index();
    for (const id of ['d1', 'd2', 'd3']) fresh.add(id, corpus[id]!);
    assert.deepEqual(ix.search('quick brown dogs', 5), fresh.search('quick brown dogs', 5), 'a removal leaves no trace in the scores');

    const many = new Bm25Index();
    for (let i = 0; i < 500; i++) many.add(`c${i}`, `term ${'pad '.repeat(i % 17)}`);
    const top = many.search('term', 7);
    assert.equal(top.length, 7);
    for (let i = 1; i < top.length; i++) assert.ok(top[i - 1]!.score >= top[i]!.score);
    assert.ok(top.every((h) => many.search('term', 500).slice(0, 7).some((x) => x.id === h.id)));
  });
});
