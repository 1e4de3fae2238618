/**
 * The native vector index through its TypeScript wrapper: upsert, search
 * (order, scores, min score), remove, scope isolation and error codes. The
 * index's recall against brute force is tested in Rust (tests/index.rs).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EngineError, VectorIndex } from '../src/engine/index.ts';

const DIM = 16;

/** A deterministic pseudo-random unit vector (32-bit LCG). */
function unit(seed: number): Float32Array {
  const v = new Float32Array(DIM);
  let s = (seed * 7919 + 1) >>> 0;
  for (let i = 0; i < DIM; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = s / 2 ** 32 - 0.5;
  }
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

function dot(a: Float32Array, b: Float32Array): number {
  return a.reduce((sum, x, i) => sum + x * (b[i] ?? 0), 0);
}

function expectCode(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof EngineError, `expected EngineError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('VectorIndex', () => {
  it('finds the nearest entries, best first, with cosine scores', () => {
    const index = new VectorIndex(DIM);
    assert.equal(index.dim, DIM);
    for (let i = 0; i < 200; i++) index.upsert('s', `e${i}`, unit(i));
    assert.equal(index.size, 200);
    assert.equal(index.scopeSize('s'), 200);
    assert.ok(index.memoryBytes() > 200 * DIM * 5);

    const q = unit(7);
    const hits = index.search('s', q, 5);
    assert.equal(hits.length, 5);
    assert.equal(hits[0]?.id, 'e7');
    assert.ok(Math.abs((hits[0]?.score ?? 0) - 1) < 1e-5);
    const expected = Array.from({ length: 200 }, (_, i) => ({ id: `e${i}`, score: dot(unit(i), q) }))
      .sort((a, b) => b.score - a.score)
      .slice(0, 5);
    assert.deepEqual(hits.map((h) => h.id), expected.map((e) => e.id));
    hits.forEach((h, i) => assert.ok(Math.abs(h.score - (expected[i]?.score ?? 0)) < 1e-5));

    const second = hits[1]?.score ?? 0;
    assert.deepEqual(index.search('s', q, 5, second).map((h) => h.id), hits.slice(0, 2).map((h) => h.id));
  });

  it('replaces and removes entries', () => {
    const index = new VectorIndex(DIM);
    for (let i = 0; i < 10; i++) index.upsert('s', `e${i}`, unit(i));
    index.upsert('s', 'e3', unit(100));
    assert.equal(index.size, 10);
    assert.equal(index.search('s', unit(100), 1)[0]?.id, 'e3');
    assert.notEqual(index.search('s', unit(3), 1)[0]?.id, 'e3');

    assert.equal(index.remove('e3'), true);
    assert.equal(index.remove('e3'), false);
    assert.equal(index.size, 9);
    assert.ok(index.search('s', unit(100), 10).every((h) => h.id !== 'e3'));
    assert.equal(index.search('s', unit(9), 1)[0]?.id, 'e9');

    index.clear();
    assert.equal(index.size, 0);
    assert.deepEqual(index.search('s', unit(9), 1), []);
  });

  it('keeps scopes apart', () => {
    const index = new VectorIndex(DIM);
    index.upsert('tenant-a', 'a', unit(1));
    index.upsert('tenant-b', 'b', unit(2));
    assert.deepEqual(index.search('tenant-a', unit(2), 10).map((h) => h.id), ['a']);
    assert.deepEqual(index.search('tenant-b', unit(1), 10).map((h) => h.id), ['b']);
    assert.deepEqual(index.search('tenant-c', unit(1), 10), []);

    // An upsert under another scope moves the entry.
    index.upsert('tenant-b', 'a', unit(1));
    assert.equal(index.scopeSize('tenant-a'), 0);
    assert.deepEqual(index.search('tenant-b', unit(1), 10).map((h) => h.id), ['a', 'b']);
    assert.equal(index.removeScope('tenant-b'), 2);
    assert.equal(index.size, 0);
  });

  it('rejects bad input with INVALID_INPUT', () => {
    const index = new VectorIndex(DIM);
    expectCode(() => index.upsert('s', 'x', new Float32Array(DIM + 1)), 'INVALID_INPUT', /17 dimensions; the index has 16/);
    expectCode(() => index.upsert('s', '', unit(1)), 'INVALID_INPUT', /id must not be empty/);
    const nan = unit(1);
    nan[3] = Number.NaN;
    expectCode(() => index.upsert('s', 'x', nan), 'INVALID_INPUT', /non-finite/);
    expectCode(() => index.search('s', new Float32Array(3), 1), 'INVALID_INPUT');
    expectCode(() => index.search('s', unit(1), 0), 'INVALID_INPUT', /k must be/);
    expectCode(() => index.search('s', unit(1), 1001), 'INVALID_INPUT', /k must be/);
    expectCode(() => new VectorIndex(0), 'INVALID_INPUT');
    assert.equal(index.size, 0);
  });

  it('searches on the thread pool with the same results and the same error codes', async () => {
    const index = new VectorIndex(DIM);
    for (let i = 0; i < 300; i++) index.upsert('s', `e${i}`, unit(i));
    for (const seed of [5, 77, 301]) assert.deepEqual(await index.searchAsync('s', unit(seed), 7), index.search('s', unit(seed), 7));
    assert.deepEqual(await index.searchAsync('s', unit(5), 3, 0.99), index.search('s', unit(5), 3, 0.99));
    assert.deepEqual(await index.searchAsync('nowhere', unit(5), 3), []);
    for (const [vector, k, message] of [
      [new Float32Array(3), 1, /3 dimensions/],
      [unit(1), 0, /k must be/],
    ] as const) {
      await assert.rejects(index.searchAsync('s', vector, k), (err: unknown) => {
        assert.ok(err instanceof EngineError, `expected EngineError, got ${String(err)}`);
        assert.equal(err.code, 'INVALID_INPUT');
        assert.match(err.message, message);
        return true;
      });
    }
  });
});
