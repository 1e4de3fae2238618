/**
 * Which numbered sources an answer cites. The RAG prompt numbers its sources
 * [1]..[k]; models cite them as `[1]`, `[1][2]`, `[1, 2]`, `[1-3]`,
 * `[Source 1]` or `[Sources 1 and 2]`. Numbers outside 1..k are reported
 * apart, never mapped to a document. Brackets right after a word character
 * (`argv[1]`) are indexing, not citations.
 */

/** The citations found in an answer. */
export interface ParsedCitations {
  /** Source numbers in 1..sourceCount, in order of first citation, each once. */
  cited: number[];
  /** Cited numbers outside 1..sourceCount (0, or past the last source), each once. */
  outOfRange: number[];
}

/** A cited source, mapped to its document. */
export interface Citation {
  /** The source's number in the prompt (1-based). */
  source: number;
  /** Document id of the cited chunk. */
  id: string;
  title: string;
}

/** A bracket holding source numbers: `[1]`, `[1, 2]`, `[Source 1]`, `[Sources 1 and 3]`, `[1-3]`. */
const BRACKET = /(?<![\w$])\[\s*((?:sources?\s*)?\d{1,4}(?:\s*(?:,|;|and|&|-|–)\s*(?:sources?\s*)?\d{1,4})*)\s*\]/giu;
const NUMBER_OR_RANGE = /(\d{1,4})(?:\s*[-–]\s*(?:sources?\s*)?(\d{1,4}))?/giu;
/** A range wider than this is not a citation anyone means (`[1-2000]`). */
const MAX_RANGE = 20;

/** Parses the source numbers an answer cites, given how many sources the prompt held. */
export function parseCitations(text: string, sourceCount: number): ParsedCitations {
  const cited: number[] = [];
  const outOfRange: number[] = [];
  const note = (n: number): void => {
    const list = n >= 1 && n <= sourceCount ? cited : outOfRange;
    if (!list.includes(n)) list.push(n);
  };
  for (const m of text.matchAll(BRACKET)) {
    for (const r of m[1]!.matchAll(NUMBER_OR_RANGE)) {
      const from = Number(r[1]);
      const to = r[2] === undefined ? from : Number(r[2]);
      if (to >= from && to - from <= MAX_RANGE) for (let n = from; n <= to; n++) note(n);
      else note(from);
    }
  }
  return { cited, outOfRange };
}

/** The sources an answer cites, mapped to their documents (out-of-range numbers are dropped). */
export function citationsOf(answer: string, sources: readonly { id: string; title: string }[]): Citation[] {
  return parseCitations(answer, sources.length).cited.map((n) => ({ source: n, id: sources[n - 1]!.id, title: sources[n - 1]!.title }));
}
