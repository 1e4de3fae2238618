/**
 * `negationCount`, the guard that keeps "Is X safe?" from being a semantic
 * hit for "Is X not safe?": plain words, contractions with straight and
 * curly apostrophes, and words that merely contain "no"/"not".
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { negationCount } from '../src/services/cache/scope.ts';

it('counts negation words and contractions, straight or curly', () => {
  const cases: [string, number][] = [
    ['Is the cat on the mat?', 0],
    ['Is the cat not on the mat?', 1],
    ['Isn\'t the cat on the mat?', 1],
    ['Isn’t the cat on the mat?', 1],
    ['Why DON’T cats like water?', 1],
    ['I can\'t and I cannot', 2],
    ['It ain’t so', 1],
    ['Never say never, no?', 3],
    ['Nothing, nobody, none; neither this nor that, without doubt, except Sundays', 7],
    ['It is not that it is not safe', 2],
  ];
  for (const [q, n] of cases) assert.equal(negationCount(q), n, q);
});

it('ignores words that only contain the letters', () => {
  for (const q of ['Is Nottingham notable for knots?', 'What does the nonce notation denote?', 'Are nodes in Norway annotated?', 'Tell me about the Nobel prize']) {
    assert.equal(negationCount(q), 0, q);
  }
});
