/**
 * What makes two cached answers interchangeable. A scope names everything
 * besides the question that shapes an answer: model, sampling parameters,
 * system prompt, retrieval settings, corpus version and tenant. A hit never
 * crosses scopes: the exact key hashes the scope, and the semantic index is
 * partitioned by it.
 */
import { createHash } from 'node:crypto';

/** Everything besides the question that shapes a cached answer. */
export interface CacheScope {
  /** The pipeline (only `rag` today); another kind never shares entries. */
  kind: string;
  model: string;
  /** Sampling parameters as sent to the engine. */
  params: Record<string, unknown>;
  system: string;
  /** Retrieval settings (k, reranker…). */
  retrieval: Record<string, unknown>;
  /** Corpus version the answer was grounded on (empty when none). */
  corpus: string;
  tenant: string;
}

/** JSON with sorted keys, so equal scopes hash equally. */
function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

/** The scope's id (hex): partition of the semantic index, prefix of exact keys. */
export function scopeId(scope: CacheScope): string {
  return sha(stable(scope)).slice(0, 32);
}

/** Tags an entry carries for invalidation: its tenant and its corpus version. */
export function scopeTags(scope: CacheScope): string[] {
  return [`tenant:${scope.tenant}`, ...(scope.corpus ? [`corpus:${scope.corpus}`] : [])];
}

/**
 * The question as the exact path compares it: Unicode-normalised, case- and
 * whitespace-folded, trailing punctuation dropped. Nothing that changes
 * meaning is touched.
 */
export function normalizeQuery(q: string): string {
  return q
    .normalize('NFKC')
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/[\s?!.]+$/u, '');
}

/** The exact-match key of a question within a scope. */
export function exactKey(scopeIdHex: string, query: string): string {
  return sha(`${scopeIdHex}\n${normalizeQuery(query)}`).slice(0, 40);
}

const NEGATIONS = /\b(not|no|never|none|nothing|nobody|neither|nor|without|except|cannot|isn't|aren't|wasn't|weren't|don't|doesn't|didn't|won't|wouldn't|can't|couldn't|shouldn't|hasn't|haven't|hadn't)\b|n't\b/gu;

/**
 * Embeddings barely move when a "not" is added, so "Is X safe?" and "Is X
 * not safe?" score above any useful threshold. A semantic hit must agree on
 * how many negations the two questions carry.
 */
export function negationCount(q: string): number {
  return normalizeQuery(q).replace(/[’]/g, "'").match(NEGATIONS)?.length ?? 0;
}
