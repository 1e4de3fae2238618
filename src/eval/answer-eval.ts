/**
 * The answer evaluation: a question set over documentation that ships inside
 * pinned npm packages, ingested through a server's `/v1/documents` and asked
 * through its `/v1/query`. It scores what a user sees: whether the answer
 * holds the key term, whether each source it cites holds the answer, whether
 * it says it does not know when the corpus has no answer, and how long it
 * took. Used by `npm run eval:answers` and by the evaluation test.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { parseCitations } from '../services/citations.ts';

/** One alternative of what a correct answer contains: a term, or several terms that must all appear. */
export type Expectation = string | string[];

/** A question of the set. */
export interface EvalQuestion {
  id: string;
  question: string;
  /** Alternatives of key terms; any one (all of its terms) makes the answer correct. Absent when unanswerable. */
  expect?: Expectation[];
  /** Document id that holds the answer. */
  doc?: string;
  /** The corpus has no answer: the model should say it does not know. */
  unanswerable?: boolean;
}

/** A document of the corpus: a file inside an installed npm package, pinned by version. */
export interface EvalDocument {
  id: string;
  title: string;
  package: string;
  version: string;
  /** Path inside the package. */
  file: string;
}

/** The question set with its corpus. */
export interface EvalSet {
  corpus: EvalDocument[];
  questions: EvalQuestion[];
}

/** What one question scored. */
export interface QuestionResult {
  id: string;
  question: string;
  answerable: boolean;
  answer: string;
  /** The answer holds a key term (answerable questions). */
  correct: boolean;
  /** The answer says it does not know. */
  refused: boolean;
  /** Cited source numbers within the sources, and outside them. */
  cited: number[];
  citedOutOfRange: number[];
  /** Document ids of the sources given to the model, in prompt order. */
  sources: string[];
  /** Document ids the server reported as cited (its `citations`). */
  citedDocuments: string[];
  /** At least one citation, none out of range, and every cited source holds the answer. */
  citationCorrect: boolean;
  /** A source given to the model holds the answer (retrieval did its part). */
  retrieved: boolean;
  /** Nothing but citations and punctuation. */
  bare: boolean;
  ttftMs: number;
  totalMs: number;
  completionTokens: number;
  /** Prompt tokens: system prompt, examples, sources and question. */
  promptTokens: number;
  finishReason: string;
}

/** The figures of a run. */
export interface EvalSummary {
  answerable: number;
  unanswerable: number;
  /** Share of answerable questions whose answer holds a key term. */
  accuracy: number;
  /** Share of answerable questions whose citations are all correct (and present). */
  citationCorrectness: number;
  /** Share of answerable questions answered in words with correct citations: the goal figure. */
  answeredAndCited: number;
  /** Share of unanswerable questions where the model said it does not know. */
  refusalRate: number;
  /** Share of answerable questions the model refused. */
  falseRefusalRate: number;
  /** Share of answerable questions whose answer was a bare citation. */
  bareRate: number;
  /** Share of answerable questions where a source given to the model held the answer. */
  retrievalHitRate: number;
  ttftMs: { mean: number; p50: number; p95: number };
  totalMs: { mean: number; p50: number; p95: number };
  completionTokensMean: number;
  promptTokensMean: number;
}

/** Reads and checks a question set: ids unique, documents known, key terms not given away by the question. */
export function loadEvalSet(file: string): EvalSet {
  const set = JSON.parse(readFileSync(file, 'utf8')) as EvalSet;
  const docs = new Set(set.corpus.map((d) => d.id));
  const ids = new Set<string>();
  for (const q of set.questions) {
    if (ids.has(q.id)) throw new Error(`${file}: question id '${q.id}' appears twice`);
    ids.add(q.id);
    if (q.unanswerable) continue;
    if (!q.expect?.length) throw new Error(`${file}: question '${q.id}' has no expected terms`);
    if (!q.doc || !docs.has(q.doc)) throw new Error(`${file}: question '${q.id}' names an unknown document '${q.doc}'`);
    for (const alt of q.expect) {
      for (const term of typeof alt === 'string' ? [alt] : alt) {
        if (containsTerm(q.question, term)) throw new Error(`${file}: question '${q.id}' gives its answer away ('${term}')`);
      }
    }
  }
  return set;
}

/**
 * The fixed subset `npm test` runs (the whole set on the default 1.5B model
 * costs more than a 2-core CI machine can spare): of each document's
 * questions, in file order, the 1st, 3rd, 5th… (so every document keeps
 * one), and every unanswerable question. `npm run eval:answers -- --subset
 * test` runs the same questions.
 */
export function testSubset(questions: readonly EvalQuestion[]): EvalQuestion[] {
  const seen = new Map<string, number>();
  return questions.filter((q) => {
    if (q.unanswerable || !q.doc) return true;
    const n = seen.get(q.doc) ?? 0;
    seen.set(q.doc, n + 1);
    return n % 2 === 0;
  });
}

/**
 * Reads the corpus from the installed packages under `nodeModules`. Fails when
 * a package's version is not the one the set was written for (its answers may
 * have moved), or when a question's key terms are not in its document.
 */
export function readCorpus(set: EvalSet, nodeModules: string): { id: string; title: string; text: string }[] {
  const out = set.corpus.map((d) => {
    const dir = path.join(nodeModules, d.package);
    const version = (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
    if (version !== d.version) {
      throw new Error(`the evaluation corpus was written for ${d.package}@${d.version}, but ${version} is installed: check the questions against the new text and update the set`);
    }
    return { id: d.id, title: d.title, text: readFileSync(path.join(dir, d.file), 'utf8') };
  });
  for (const q of set.questions) {
    if (q.unanswerable) continue;
    const doc = out.find((d) => d.id === q.doc)!;
    if (!matchesExpectation(doc.text, q.expect!)) throw new Error(`question '${q.id}': none of its expected terms is in ${q.doc}`);
  }
  return out;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Whether `text` contains `term`, case-insensitively. A term that starts or
 * ends with a letter or digit must not run into one ("10" is not in "100"),
 * and a word may take a plural "s" ("counter" is in "Counters").
 */
export function containsTerm(text: string, term: string): boolean {
  // Digits must not continue a number either ("10" is not in "0.10"); a version may follow a "v".
  const start = /^\d/u.test(term) ? '(?<![0-9a-uw-z_]|\\d\\.)' : /^\w/u.test(term) ? '(?<![\\w])' : '';
  // A number may take a unit ("10ms"), not more digits.
  const end = /[a-z]$/iu.test(term) ? 's?(?![\\w])' : /\d$/u.test(term) ? '(?!\\d|\\.\\d)' : /\w$/u.test(term) ? '(?![\\w])' : '';
  // Both lower-cased rather than the `i` flag, which would let [a-u] match "V".
  return new RegExp(`${start}${escapeRegExp(term.toLowerCase())}${end}`, 'u').test(text.toLowerCase());
}

/** Whether `text` meets one of the alternatives (all terms of an array alternative). */
export function matchesExpectation(text: string, expect: readonly Expectation[]): boolean {
  return expect.some((alt) => (typeof alt === 'string' ? [alt] : alt).every((t) => containsTerm(text, t)));
}

const REFUSAL =
  /\b(?:(?:i|we)\s+(?:do not|don't|cannot|can't|am unable to|could not|couldn't)\s+(?:know|find|answer|tell|say|determine)|(?:do|does|did)\s*(?:not|n't)\s+(?:contain|mention|provide|include|specify|say|state|give|cover|have)|not\s+(?:mentioned|specified|stated|provided|available|found|included|given|covered)\b|no\s+(?:information|mention|answer|details?)\b|unable to\b|not enough information|insufficient information|unknown\b)/iu;

/** Whether an answer says it does not know. */
export function isRefusal(answer: string): boolean {
  return REFUSAL.test(answer.replace(/[’]/g, "'"));
}

/** A JSON answer of /v1/query, as far as the evaluation reads it. */
interface QueryAnswer {
  answer: string;
  sources: { id: string; text?: string }[];
  citations?: { source: number; id: string }[];
  finish_reason: string;
  usage: { completion_tokens: number; prompt_tokens: number };
  timings: { ttft_ms: number };
}

/** Scores one answer to one question. */
export function scoreAnswer(q: EvalQuestion, a: QueryAnswer, totalMs: number): QuestionResult {
  const answerable = !q.unanswerable;
  const { cited, outOfRange } = parseCitations(a.answer, a.sources.length);
  const holds = (i: number): boolean => answerable && matchesExpectation(a.sources[i]?.text ?? '', q.expect!);
  return {
    id: q.id,
    question: q.question,
    answerable,
    answer: a.answer,
    correct: answerable && matchesExpectation(a.answer, q.expect!),
    refused: isRefusal(a.answer),
    cited,
    citedOutOfRange: outOfRange,
    sources: a.sources.map((s) => s.id),
    citedDocuments: (a.citations ?? []).map((c) => c.id),
    citationCorrect: answerable && cited.length > 0 && outOfRange.length === 0 && cited.every((n) => holds(n - 1)),
    retrieved: answerable && a.sources.some((_, i) => holds(i)),
    bare: a.answer.replace(/\[[^\]]*\]|[\s.,;:!?()]/gu, '') === '',
    ttftMs: a.timings.ttft_ms,
    totalMs,
    completionTokens: a.usage.completion_tokens,
    promptTokens: a.usage.prompt_tokens,
    finishReason: a.finish_reason,
  };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function stats(values: number[]): { mean: number; p50: number; p95: number } {
  const s = [...values].sort((x, y) => x - y);
  return { mean: s.reduce((x, y) => x + y, 0) / (s.length || 1), p50: percentile(s, 50), p95: percentile(s, 95) };
}

/** The figures of a run's results. */
export function summarize(results: readonly QuestionResult[]): EvalSummary {
  const ans = results.filter((r) => r.answerable);
  const un = results.filter((r) => !r.answerable);
  const share = (rs: readonly QuestionResult[], f: (r: QuestionResult) => boolean): number => (rs.length ? rs.filter(f).length / rs.length : 0);
  return {
    answerable: ans.length,
    unanswerable: un.length,
    accuracy: share(ans, (r) => r.correct),
    citationCorrectness: share(ans, (r) => r.citationCorrect),
    answeredAndCited: share(ans, (r) => r.correct && r.citationCorrect),
    refusalRate: share(un, (r) => r.refused),
    falseRefusalRate: share(ans, (r) => r.refused && !r.correct),
    bareRate: share(ans, (r) => r.bare),
    retrievalHitRate: share(ans, (r) => r.retrieved),
    ttftMs: stats(results.map((r) => r.ttftMs)),
    totalMs: stats(results.map((r) => r.totalMs)),
    completionTokensMean: results.reduce((x, r) => x + r.completionTokens, 0) / (results.length || 1),
    promptTokensMean: results.reduce((x, r) => x + r.promptTokens, 0) / (results.length || 1),
  };
}

/** Options of {@link ingestCorpus}. */
export interface IngestOptions {
  baseUrl: string;
  documents: { id: string; title: string; text: string }[];
  headers?: Record<string, string>;
}

/** Adds the corpus through the server's API (201 once on disk). */
export async function ingestCorpus(options: IngestOptions): Promise<void> {
  const res = await fetch(`${options.baseUrl}/v1/documents`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...options.headers },
    body: JSON.stringify({ documents: options.documents }),
  });
  if (res.status !== 201) throw new Error(`ingesting the corpus failed: ${res.status} ${await res.text()}`);
}

/**
 * POSTs JSON and reads the whole answer. Plain node:http rather than fetch:
 * fetch gives up on a response whose headers take over 300 s, and a larger
 * model on a busy CPU, several questions at a time, can take that long.
 */
function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** Options of {@link runAnswerEval}. */
export interface RunOptions {
  baseUrl: string;
  questions: readonly EvalQuestion[];
  /** Extra fields of every query (model, system_prompt, max_tokens…). */
  body?: Record<string, unknown>;
  /** Queries in flight at once (1 gives clean latencies; more finishes sooner). */
  concurrency?: number;
  headers?: Record<string, string>;
  /** Called with each result as it arrives. */
  onResult?: (r: QuestionResult) => void;
}

/**
 * Asks every question through `/v1/query` at temperature 0, without the
 * semantic cache (each answer is generated), and scores the answers.
 * Results come back in the set's order.
 */
export async function runAnswerEval(options: RunOptions): Promise<QuestionResult[]> {
  const results: QuestionResult[] = new Array<QuestionResult>(options.questions.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < options.questions.length) {
      const i = next++;
      const q = options.questions[i]!;
      const t = performance.now();
      const res = await postJson(`${options.baseUrl}/v1/query`, { temperature: 0, ...options.body, query: q.question, include_sources: true, cache: false }, options.headers);
      if (res.status !== 200) throw new Error(`question '${q.id}': ${res.status} ${res.text}`);
      const r = scoreAnswer(q, JSON.parse(res.text) as QueryAnswer, performance.now() - t);
      results[i] = r;
      options.onResult?.(r);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 1) }, worker));
  return results;
}

const pct = (x: number): string => `${(100 * x).toFixed(1)} %`;

/** The summary as the script prints it. */
export function formatSummary(name: string, s: EvalSummary): string {
  return [
    `${name}: ${s.answerable} answerable, ${s.unanswerable} unanswerable questions`,
    `  answered in words with correct citations  ${pct(s.answeredAndCited)}`,
    `  accuracy (key term in the answer)         ${pct(s.accuracy)}`,
    `  citation correctness                      ${pct(s.citationCorrectness)}`,
    `  refusals where the corpus has no answer   ${pct(s.refusalRate)}`,
    `  refusals where it has one                 ${pct(s.falseRefusalRate)}`,
    `  bare-citation answers                     ${pct(s.bareRate)}`,
    `  retrieval: a source holds the answer      ${pct(s.retrievalHitRate)}`,
    `  TTFT ms      mean ${s.ttftMs.mean.toFixed(0)}  p50 ${s.ttftMs.p50.toFixed(0)}  p95 ${s.ttftMs.p95.toFixed(0)}`,
    `  total ms     mean ${s.totalMs.mean.toFixed(0)}  p50 ${s.totalMs.p50.toFixed(0)}  p95 ${s.totalMs.p95.toFixed(0)}`,
    `  prompt tokens mean ${s.promptTokensMean.toFixed(0)}, completion tokens mean ${s.completionTokensMean.toFixed(1)}`,
  ].join('\n');
}
