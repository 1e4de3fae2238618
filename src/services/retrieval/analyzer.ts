/**
 * The text analyzer BM25 indexes and queries with: Unicode letters and
 * digits, lower-cased, English stop words dropped (they match nearly every
 * chunk: noise in the ranking and long posting lists to walk), and plural
 * endings stripped with Harman's "S" stemmer (1991), so "tokens" finds
 * "token" without a full stemmer's surprises.
 */

const STOP_WORDS = new Set(
  (
    'a an and are as at be but by can could did do does for from had has have how i if in into is it its ' +
    'me my no not of on or our so such than that the their them then there these they this those to ' +
    'was we were what when where which while who whom why will with would you your'
  ).split(' '),
);

/** Harman's S stemmer: ies→y, es→e, s→'' with its exceptions. */
export function stemS(word: string): string {
  if (word.length <= 3) return word;
  if (word.endsWith('ies') && !word.endsWith('eies') && !word.endsWith('aies')) return `${word.slice(0, -3)}y`;
  if (word.endsWith('es') && !word.endsWith('aes') && !word.endsWith('ees') && !word.endsWith('oes')) return word.slice(0, -1);
  if (word.endsWith('s') && !word.endsWith('us') && !word.endsWith('ss')) return word.slice(0, -1);
  return word;
}

/** The index terms of `text`, in order (repeats kept: they are term frequencies). */
export function analyze(text: string): string[] {
  const out: string[] = [];
  // NFKC folds compatibility forms (ligatures, full-width letters); plain ASCII has none, and is most text.
  const folded = (ASCII.test(text) ? text : text.normalize('NFKC')).toLowerCase();
  for (const w of folded.split(SEPARATORS)) {
    if (w !== '' && !STOP_WORDS.has(w)) out.push(stemS(w));
  }
  return out;
}

const ASCII = /^[\x00-\x7f]*$/;
const SEPARATORS = /[^\p{L}\p{N}]+/u;
