/**
 * Retrieved chunks grouped into one numbered source per document. A small
 * model given three chunks of one document as [1], [2], [3] often answers
 * from one and cites another; as one source it cannot cite the wrong chunk,
 * and the citation names what a reader checks anyway: the document.
 */

/** A retrieved chunk as grouping reads it. */
export interface GroupableChunk {
  docId: string;
  title: string;
  /** Position of the chunk in its document. */
  chunk: number;
  text: string;
  score: number;
}

/** One document's retrieved passages, in document order. */
export interface SourceGroup {
  id: string;
  title: string;
  /** The best score among its chunks. */
  score: number;
  /** Chunk positions it holds, in document order. */
  chunks: number[];
  /** The passages joined: neighbouring chunks without their shared overlap, gaps marked by an ellipsis line. */
  text: string;
}

/** The separator between passages that are not neighbours in the document. */
export const PASSAGE_GAP = '\n…\n';

/**
 * Groups `chunks` (best first) by document: documents in the order of their
 * best chunk, each document's passages in document order.
 */
export function groupByDocument(chunks: readonly GroupableChunk[]): SourceGroup[] {
  const byDoc = new Map<string, GroupableChunk[]>();
  for (const c of chunks) {
    const list = byDoc.get(c.docId);
    if (list) list.push(c);
    else byDoc.set(c.docId, [c]);
  }
  return [...byDoc.values()].map((list) => {
    const ordered = [...list].sort((a, b) => a.chunk - b.chunk);
    let text = '';
    for (const [i, c] of ordered.entries()) {
      if (i === 0) text = c.text;
      else if (c.chunk === ordered[i - 1]!.chunk + 1) text = joinOverlapping(text, c.text);
      else text = `${text}${PASSAGE_GAP}${c.text}`;
    }
    return {
      id: list[0]!.docId,
      title: list[0]!.title,
      score: Math.max(...list.map((c) => c.score)),
      chunks: ordered.map((c) => c.chunk),
      text,
    };
  });
}

/**
 * Joins two neighbouring chunks, dropping the text the second repeats from
 * the end of the first (the chunker carries whole sentences over, joined by
 * spaces, so the overlap starts and ends at a space). No overlap: joined by a
 * space.
 */
export function joinOverlapping(first: string, second: string): string {
  for (let n = Math.min(first.length, second.length); n >= 1; n--) {
    const atBoundary = (n === second.length || /\s/u.test(second[n]!)) && (n === first.length || /\s/u.test(first[first.length - n - 1]!));
    if (atBoundary && first.endsWith(second.slice(0, n))) return first + second.slice(n);
  }
  return `${first} ${second}`;
}
