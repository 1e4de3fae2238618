/**
 * Token-aware chunking with overlap. Text is cut at paragraph and sentence
 * boundaries into pieces, pieces are packed into chunks of at most
 * `maxTokens` (as counted by the embedder's own tokenizer), and each chunk
 * starts with the trailing pieces of the previous one, up to `overlapTokens`.
 * A single piece longer than `maxTokens` is split by words.
 */

/** Options of {@link chunkText}. */
export interface ChunkOptions {
  maxTokens: number;
  overlapTokens: number;
  /** Token counts of texts (one call for many texts). */
  countTokens: (texts: string[]) => number[];
}

/** Splits text into paragraph/sentence pieces, keeping their text intact. */
export function splitPieces(text: string): string[] {
  return text
    .split(/\n\s*\n/)
    .flatMap((para) => para.replace(/\s+/g, ' ').trim().split(/(?<=[.!?])\s+(?=\S)/))
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Cuts a piece that alone exceeds the budget into word runs that fit. */
function splitLong(piece: string, tokens: number, maxTokens: number): string[] {
  const words = piece.split(' ');
  const parts = Math.ceil(tokens / maxTokens) + 1;
  const per = Math.max(1, Math.floor(words.length / parts));
  const out: string[] = [];
  for (let i = 0; i < words.length; i += per) out.push(words.slice(i, i + per).join(' '));
  return out;
}

/** Chunks `text`; returns the chunk texts in order. */
export function chunkText(text: string, options: ChunkOptions): string[] {
  const { maxTokens, overlapTokens, countTokens } = options;
  if (overlapTokens >= maxTokens) throw new Error('overlapTokens must be smaller than maxTokens');
  let pieces = splitPieces(text);
  let counts = pieces.length > 0 ? countTokens(pieces) : [];
  // Re-split pieces that do not fit on their own (counted again: word cuts are approximate).
  for (let round = 0; round < 4 && counts.some((c) => c > maxTokens); round++) {
    pieces = pieces.flatMap((p, i) => ((counts[i] ?? 0) > maxTokens ? splitLong(p, counts[i] ?? 0, maxTokens) : [p]));
    counts = countTokens(pieces);
  }
  const chunks: string[] = [];
  let cur: number[] = []; // indices of pieces in the current chunk
  let curTokens = 0;
  for (let i = 0; i < pieces.length; i++) {
    const n = counts[i] ?? 0;
    if (cur.length > 0 && curTokens + n > maxTokens) {
      chunks.push(cur.map((j) => pieces[j]).join(' '));
      // Carry trailing pieces as overlap.
      const carry: number[] = [];
      let carried = 0;
      for (let j = cur.length - 1; j >= 0; j--) {
        const c = counts[cur[j]!] ?? 0;
        if (carried + c > overlapTokens || carried + c + n > maxTokens) break;
        carry.unshift(cur[j]!);
        carried += c;
      }
      cur = carry;
      curTokens = carried;
    }
    cur.push(i);
    curTokens += n;
  }
  if (cur.length > 0) chunks.push(cur.map((j) => pieces[j]).join(' '));
  return chunks;
}
