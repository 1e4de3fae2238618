/**
 * Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): each
 * ranked list gives an item 1 / (k + rank), rank counted from 1, and the
 * sums decide the fused order. It needs no score normalisation, which is
 * why it is the usual way to merge BM25 and dense rankings (Elasticsearch,
 * OpenSearch, Vespa and Weaviate default to k = 60).
 */

/** The constant the literature and the search engines use. */
export const RRF_K = 60;

/** One fused item: its fused score and its 1-based rank in each list (null when absent). */
export interface Fused {
  id: string;
  score: number;
  ranks: (number | null)[];
}

/**
 * Fuses ranked id lists (best first) into one, best first. Ties are broken
 * by the best single rank, then by id, so the order is deterministic. An id
 * repeated within a list counts at its first rank only.
 */
export function reciprocalRankFusion(lists: readonly (readonly string[])[], k: number = RRF_K): Fused[] {
  if (!(k >= 0) || !Number.isFinite(k)) throw new RangeError(`RRF k must be a finite number >= 0, got ${k}`);
  const byId = new Map<string, Fused>();
  lists.forEach((list, li) => {
    list.forEach((id, i) => {
      let f = byId.get(id);
      if (!f) {
        f = { id, score: 0, ranks: lists.map(() => null) };
        byId.set(id, f);
      }
      if (f.ranks[li] !== null) return;
      f.ranks[li] = i + 1;
      f.score += 1 / (k + i + 1);
    });
  });
  const best = (f: Fused) => Math.min(...f.ranks.map((r) => r ?? Infinity));
  return [...byId.values()].sort((a, b) => b.score - a.score || best(a) - best(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
