/** Grouping retrieved chunks into one source per document, and the prompt's source order. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chunkText } from '../src/services/chunker.ts';
import { promptSources } from '../src/services/rag.ts';
import { DEFAULT_RAG_LAYOUT } from '../src/services/rag-prompt.ts';
import type { RetrievedChunk } from '../src/services/retrieval/retriever.ts';
import { groupByDocument, joinOverlapping, PASSAGE_GAP } from '../src/services/source-groups.ts';

const words = (s: string): number => s.split(/\s+/u).filter(Boolean).length;

function hit(docId: string, chunk: number, text: string, score: number): RetrievedChunk {
  return { docId, title: `Title of ${docId}`, chunk, text, score, scores: { dense: score, bm25: null, fused: null, rerank: null } };
}

describe('joinOverlapping', () => {
  it('drops the sentences the second chunk carries over from the first', () => {
    assert.equal(joinOverlapping('One. Two. Three.', 'Two. Three. Four.'), 'One. Two. Three. Four.');
    assert.equal(joinOverlapping('Alpha beta. Gamma.', 'Gamma. Delta.'), 'Alpha beta. Gamma. Delta.');
  });

  it('joins by a space when nothing is carried over, and never cuts inside a word', () => {
    assert.equal(joinOverlapping('One. Two.', 'Three. Four.'), 'One. Two. Three. Four.');
    // "o." ends the first and starts no sentence of the second: not an overlap.
    assert.equal(joinOverlapping('Say no.', 'o. Then.'), 'Say no. o. Then.');
  });

  it('rebuilds the text the chunker cut (real overlaps)', () => {
    const sentences = Array.from({ length: 40 }, (_, i) => `Sentence number ${i} says something about item ${i}.`);
    const text = sentences.join(' ');
    const chunks = chunkText(text, { maxTokens: 40, overlapTokens: 12, countTokens: (ts) => ts.map(words) });
    assert.ok(chunks.length > 4);
    assert.equal(chunks.reduce((a, b) => joinOverlapping(a, b)), text);
  });
});

describe('groupByDocument', () => {
  it('makes one source per document, ordered by its best chunk, passages in document order', () => {
    const groups = groupByDocument([hit('b', 5, 'B five.', 0.9), hit('a', 2, 'A two.', 0.8), hit('b', 1, 'B one.', 0.7), hit('b', 6, 'B five. B six.', 0.6)]);
    assert.deepEqual(
      groups.map((g) => [g.id, g.chunks, g.score]),
      [
        ['b', [1, 5, 6], 0.9],
        ['a', [2], 0.8],
      ],
    );
    assert.equal(groups[0]!.text, `B one.${PASSAGE_GAP}B five. B six.`);
    assert.equal(groups[0]!.title, 'Title of b');
  });

  it('leaves an empty list empty', () => {
    assert.deepEqual(groupByDocument([]), []);
  });
});

describe('promptSources', () => {
  const hits = [hit('a', 0, 'A.', 3), hit('b', 0, 'B.', 2), hit('a', 1, 'A2.', 1)];

  it('keeps one source per chunk by default', () => {
    assert.deepEqual(
      promptSources(hits, { ...DEFAULT_RAG_LAYOUT, groupByDocument: false }).map((s) => s.id),
      ['a', 'b', 'a'],
    );
  });

  it('groups by document and can number best-last', () => {
    const grouped = promptSources(hits, { ...DEFAULT_RAG_LAYOUT, groupByDocument: true });
    assert.deepEqual(
      grouped.map((s) => [s.id, s.text]),
      [
        ['a', 'A. A2.'],
        ['b', 'B.'],
      ],
    );
    assert.deepEqual(
      promptSources(hits, { ...DEFAULT_RAG_LAYOUT, groupByDocument: true, bestLast: true }).map((s) => s.id),
      ['b', 'a'],
    );
  });
});
