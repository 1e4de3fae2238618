/** The citation parser: the shapes models write, ranges, and numbers that point at no source. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { citationsOf, parseCitations } from '../src/services/citations.ts';

describe('parseCitations', () => {
  it('reads [1], adjacent brackets and lists', () => {
    assert.deepEqual(parseCitations('Use `collectDefaultMetrics` [1].', 3), { cited: [1], outOfRange: [] });
    assert.deepEqual(parseCitations('It is 100 bytes [2][1].', 3), { cited: [2, 1], outOfRange: [] });
    assert.deepEqual(parseCitations('Both [1, 3] and [1,2].', 3), { cited: [1, 3, 2], outOfRange: [] });
    assert.deepEqual(parseCitations('See [1; 2] or [2 and 3] or [1 & 3].', 3), { cited: [1, 2, 3], outOfRange: [] });
  });

  it('reads [Source 1] in any case, and [Sources 1 and 2]', () => {
    assert.deepEqual(parseCitations('The default is latin1 [Source 2].', 3), { cited: [2], outOfRange: [] });
    assert.deepEqual(parseCitations('[source 3] says so, as do [Sources 1 and 2].', 3), { cited: [3, 1, 2], outOfRange: [] });
    assert.deepEqual(parseCitations('[SOURCE 1, Source 2]', 3), { cited: [1, 2], outOfRange: [] });
  });

  it('expands short ranges and keeps each number once', () => {
    assert.deepEqual(parseCitations('[1-3] and again [2] [1–2]', 5), { cited: [1, 2, 3], outOfRange: [] });
    // A huge "range" is no citation anyone means: only its first number counts.
    assert.deepEqual(parseCitations('[1-900]', 3), { cited: [1], outOfRange: [] });
  });

  it('reports numbers outside the sources apart', () => {
    assert.deepEqual(parseCitations('Wrong [4], zero [0], fine [3], again [4].', 3), { cited: [3], outOfRange: [4, 0] });
    assert.deepEqual(parseCitations('[2-5]', 3), { cited: [2, 3], outOfRange: [4, 5] });
    assert.deepEqual(parseCitations('Anything [1].', 0), { cited: [], outOfRange: [1] });
  });

  it('ignores indexing, decimals, links and prose in brackets', () => {
    for (const text of ['argv[1] holds it', 'arr[ 2 ]', 'buckets [0.1, 5]', 'see [the docs](x)', '[a]', '[]', 'no citation at all', '$[1]', 'x_[1]']) {
      assert.deepEqual(parseCitations(text, 3), { cited: [], outOfRange: [] }, text);
    }
    // A citation after punctuation or at the start still counts.
    assert.deepEqual(parseCitations('[1] first. (See [2].) "[3]"', 3), { cited: [1, 2, 3], outOfRange: [] });
  });
});

describe('citationsOf', () => {
  it('maps cited numbers to document ids and drops out-of-range ones', () => {
    const sources = [
      { id: 'a', title: 'A' },
      { id: 'b', title: 'B' },
      { id: 'a', title: 'A' },
    ];
    assert.deepEqual(citationsOf('x [3] y [1][9]', sources), [
      { source: 3, id: 'a', title: 'A' },
      { source: 1, id: 'a', title: 'A' },
    ]);
    assert.deepEqual(citationsOf('nothing cited', sources), []);
  });
});
