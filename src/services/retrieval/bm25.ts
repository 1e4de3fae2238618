/**
 * A small in-memory BM25 index (Okapi BM25, Robertson & Zaragoza 2009) over
 * chunk texts, with Lucene's parameters and IDF:
 *
 *   score(q, d) = Σ_t∈q  idf(t) · tf·(k1+1) / (tf + k1·(1 − b + b·|d|/avgdl))
 *   idf(t)      = ln(1 + (N − n_t + 0.5) / (n_t + 0.5))
 *
 * Own code rather than a library: the npm candidates score differently
 * (minisearch multiplies BM25+ by the number of matched query terms) and
 * return every match with per-term details, which costs allocations on a
 * 100k-chunk corpus; this is textbook BM25 with a bounded top-k.
 *
 * Adds and removes are O(distinct terms of the text); a search walks the
 * posting lists of the query's terms. Not thread-safe by
 * design: it lives on the event loop, like the rest of the document service.
 */
import { analyze } from './analyzer.ts';

/** BM25's free parameters (Lucene's defaults). */
export interface Bm25Params {
  k1: number;
  b: number;
}

export const DEFAULT_BM25: Readonly<Bm25Params> = { k1: 1.2, b: 0.75 };

/** One BM25 hit. */
export interface Bm25Hit {
  id: string;
  score: number;
}

export class Bm25Index {
  readonly #params: Bm25Params;
  /** Entries live in numbered slots: small-integer map keys and array-indexed scores keep a 100k-entry search in milliseconds. */
  readonly #slotOf = new Map<string, number>();
  #ids: (string | undefined)[] = [];
  #lengths = new Float64Array(1024);
  /** Distinct terms per slot, to remove the entry. */
  #terms: (string[] | undefined)[] = [];
  readonly #free: number[] = [];
  /** term → (slot → term frequency). */
  readonly #postings = new Map<string, Map<number, number>>();
  #totalLength = 0;
  /** Per-search score accumulator, indexed by slot (reused; only touched slots are reset). */
  #scores = new Float64Array(1024);

  constructor(params: Partial<Bm25Params> = {}) {
    this.#params = { ...DEFAULT_BM25, ...params };
  }

  /** Entries indexed. */
  get size(): number {
    return this.#slotOf.size;
  }

  /** Indexes `text` under `id`, replacing what `id` held. */
  add(id: string, text: string): void {
    this.remove(id);
    const tokens = analyze(text);
    const tf = new Map<string, number>();
    for (const t of tokens) tf.set(t, (tf.get(t) ?? 0) + 1);
    const slot = this.#free.pop() ?? this.#ids.length;
    if (slot >= this.#lengths.length) {
      const grown = new Float64Array(this.#lengths.length * 2);
      grown.set(this.#lengths);
      this.#lengths = grown;
      this.#scores = new Float64Array(grown.length);
    }
    for (const [term, n] of tf) {
      let p = this.#postings.get(term);
      if (!p) this.#postings.set(term, (p = new Map<number, number>()));
      p.set(slot, n);
    }
    this.#slotOf.set(id, slot);
    this.#ids[slot] = id;
    this.#terms[slot] = [...tf.keys()];
    this.#lengths[slot] = tokens.length;
    this.#totalLength += tokens.length;
  }

  /** Removes `id`; false if it was not indexed. */
  remove(id: string): boolean {
    const slot = this.#slotOf.get(id);
    if (slot === undefined) return false;
    for (const term of this.#terms[slot]!) {
      const p = this.#postings.get(term)!;
      p.delete(slot);
      if (p.size === 0) this.#postings.delete(term);
    }
    this.#slotOf.delete(id);
    this.#ids[slot] = undefined;
    this.#terms[slot] = undefined;
    this.#totalLength -= this.#lengths[slot]!;
    this.#free.push(slot);
    return true;
  }

  /** The `k` best entries for `query`, best first (ties by id); entries sharing no term are left out. */
  search(query: string, k: number): Bm25Hit[] {
    const n = this.#slotOf.size;
    if (n === 0 || k < 1) return [];
    const { k1, b } = this.#params;
    const avgdl = this.#totalLength / n || 1;
    const scores = this.#scores;
    const lengths = this.#lengths;
    const touched: number[] = [];
    // A term repeated in the query counts once per occurrence, as in Lucene's BooleanQuery of term clauses.
    for (const term of analyze(query)) {
      const p = this.#postings.get(term);
      if (!p) continue;
      const idf = Math.log(1 + (n - p.size + 0.5) / (p.size + 0.5));
      const norm = (k1 * b) / avgdl;
      const base = k1 * (1 - b);
      for (const [slot, tf] of p) {
        if (scores[slot] === 0) touched.push(slot);
        scores[slot]! += (idf * tf * (k1 + 1)) / (tf + base + norm * lengths[slot]!);
      }
    }
    const hits = topK(touched, scores, this.#ids, k);
    for (const slot of touched) scores[slot] = 0;
    return hits;
  }
}

/** The `k` best of the touched slots, best first, ties by id. */
function topK(slots: number[], scores: Float64Array, ids: (string | undefined)[], k: number): Bm25Hit[] {
  const better = (x: number, y: number) => scores[y]! - scores[x]! || (ids[x]! < ids[y]! ? -1 : ids[x]! > ids[y]! ? 1 : 0);
  // Keep a buffer of up to 2k and cut it back to k when full: O(n) amortised plus small sorts.
  let top: number[] = [];
  let floor = -Infinity;
  for (const slot of slots) {
    if (top.length >= k && scores[slot]! < floor) continue;
    top.push(slot);
    if (top.length >= 2 * k) {
      top.sort(better);
      top = top.slice(0, k);
      floor = scores[top[k - 1]!]!;
    }
  }
  return top
    .sort(better)
    .slice(0, k)
    .map((slot) => ({ id: ids[slot]!, score: scores[slot]! }));
}
