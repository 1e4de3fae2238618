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
 * Adds and removes are O(distinct terms of the text). Not thread-safe by
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
  /** term → (id → term frequency). */
  readonly #postings = new Map<string, Map<string, number>>();
  /** id → [token count, distinct terms] (the terms, to remove the entry). */
  readonly #entries = new Map<string, { length: number; terms: string[] }>();
  #totalLength = 0;

  constructor(params: Partial<Bm25Params> = {}) {
    this.#params = { ...DEFAULT_BM25, ...params };
  }

  /** Entries indexed. */
  get size(): number {
    return this.#entries.size;
  }

  /** Indexes `text` under `id`, replacing what `id` held. */
  add(id: string, text: string): void {
    this.remove(id);
    const tokens = analyze(text);
    const tf = new Map<string, number>();
    for (const t of tokens) tf.set(t, (tf.get(t) ?? 0) + 1);
    for (const [term, n] of tf) {
      let p = this.#postings.get(term);
      if (!p) this.#postings.set(term, (p = new Map()));
      p.set(id, n);
    }
    this.#entries.set(id, { length: tokens.length, terms: [...tf.keys()] });
    this.#totalLength += tokens.length;
  }

  /** Removes `id`; false if it was not indexed. */
  remove(id: string): boolean {
    const e = this.#entries.get(id);
    if (!e) return false;
    for (const term of e.terms) {
      const p = this.#postings.get(term)!;
      p.delete(id);
      if (p.size === 0) this.#postings.delete(term);
    }
    this.#entries.delete(id);
    this.#totalLength -= e.length;
    return true;
  }

  /** The `k` best entries for `query`, best first (ties by id); entries sharing no term are left out. */
  search(query: string, k: number): Bm25Hit[] {
    const n = this.#entries.size;
    if (n === 0 || k < 1) return [];
    const { k1, b } = this.#params;
    const avgdl = this.#totalLength / n || 1;
    const scores = new Map<string, number>();
    // A term repeated in the query counts once per occurrence, as in Lucene's BooleanQuery of term clauses.
    for (const term of analyze(query)) {
      const p = this.#postings.get(term);
      if (!p) continue;
      const idf = Math.log(1 + (n - p.size + 0.5) / (p.size + 0.5));
      for (const [id, tf] of p) {
        const len = this.#entries.get(id)!.length;
        const s = (idf * tf * (k1 + 1)) / (tf + k1 * (1 - b + (b * len) / avgdl));
        scores.set(id, (scores.get(id) ?? 0) + s);
      }
    }
    return topK(scores, k);
  }
}

/** The `k` highest entries of `scores`, best first, ties by id. */
function topK(scores: Map<string, number>, k: number): Bm25Hit[] {
  const better = (a: Bm25Hit, b: Bm25Hit) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  // Keep a buffer of up to 2k and cut it back to k when full: O(n) amortised plus small sorts.
  let top: Bm25Hit[] = [];
  let floor = -Infinity;
  for (const [id, score] of scores) {
    if (top.length >= k && score < floor) continue;
    top.push({ id, score });
    if (top.length >= 2 * k) {
      top.sort(better);
      top = top.slice(0, k);
      floor = top[k - 1]!.score;
    }
  }
  return top.sort(better).slice(0, k);
}
