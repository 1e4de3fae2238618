/**
 * Retrieval quality: questions with a known source document, asked of
 * POST /v1/search on a server per embedder, in each retrieval mode. A
 * question's rank is that of the first returned chunk from its source
 * document; recall@3 is the share ranked 1-3, MRR the mean of 1/rank
 * (0 past the cut-off). A stricter reading counts only an answer chunk: a
 * chunk of the source document that holds one of the question's expected
 * answer terms (with a dozen documents, finding the right document is easy;
 * finding the passage that answers is what RAG needs). The embedder list is
 * a parameter, so arms are added without new code (the corpus is
 * re-embedded by each server).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../config.ts';
import { startServer } from '../bootstrap.ts';
import { MODELS } from '../models/manifest.ts';
import type { RetrievalMode } from '../services/retrieval/retriever.ts';
import { ingestCorpus, matchesExpectation, type EvalQuestion } from './answer-eval.ts';

/** An embedder to evaluate: a display label and the model directory's name. */
export interface EmbedderArm {
  label: string;
  model: string;
}

/** One arm's figures. */
export interface RetrievalArmResult {
  label: string;
  embedder: string;
  mode: RetrievalMode;
  questions: number;
  /** Source document among the top 3 chunks' documents. */
  recallAt3: number;
  mrr: number;
  /** An answer chunk among the top 3 chunks. */
  answerRecallAt3: number;
  answerMrr: number;
  /** Ranks per question id: source document, answer chunk (null: not in the top `cutoff`). */
  ranks: Record<string, { doc: number | null; answer: number | null }>;
  /** Mean /v1/search latency (ms, client side). */
  meanMs: number;
  /** Time to ingest (chunk and embed) the corpus on this arm's server (ms; shared by the arms of one embedder). */
  ingestMs: number;
}

export interface RetrievalEvalOptions {
  questions: readonly EvalQuestion[];
  documents: { id: string; title: string; text: string }[];
  embedders: readonly EmbedderArm[];
  modes: readonly RetrievalMode[];
  modelsDir: string;
  /** Chunks asked for per question (MRR's cut-off); default 10. */
  cutoff?: number;
  onArm?: (r: RetrievalArmResult) => void;
}

/**
 * The documents of at most `maxChars` characters and the questions about them:
 * a smaller corpus for a time-bounded run (ingestion time grows with the text).
 * The choice depends on document length only, never on how a question scored.
 */
export function limitCorpus<D extends { id: string; text: string }>(
  questions: readonly EvalQuestion[],
  documents: readonly D[],
  maxChars: number,
): { questions: EvalQuestion[]; documents: D[] } {
  const kept = documents.filter((d) => d.text.length <= maxChars);
  const ids = new Set(kept.map((d) => d.id));
  return { documents: kept, questions: questions.filter((q) => q.doc !== undefined && ids.has(q.doc)) };
}

/** A /v1/search hit as the evaluation reads it. */
export interface SearchHit {
  document_id: string;
  text: string;
}

/** Rank (1-based) of the first hit from `q`'s source document, or null. */
export function documentRank(hits: readonly SearchHit[], q: EvalQuestion): number | null {
  const i = hits.findIndex((h) => h.document_id === q.doc);
  return i < 0 ? null : i + 1;
}

/** Rank (1-based) of the first answer chunk of `q` (its document, one of its expected terms), or null. */
export function answerRank(hits: readonly SearchHit[], q: EvalQuestion): number | null {
  const i = hits.findIndex((h) => h.document_id === q.doc && matchesExpectation(h.text, q.expect ?? []));
  return i < 0 ? null : i + 1;
}

/** recall@k and MRR of a list of ranks. */
export function scoreRanks(ranks: readonly (number | null)[], k = 3): { recall: number; mrr: number } {
  if (ranks.length === 0) return { recall: 0, mrr: 0 };
  return {
    recall: ranks.filter((r) => r !== null && r <= k).length / ranks.length,
    mrr: ranks.reduce<number>((s, r) => s + (r === null ? 0 : 1 / r), 0) / ranks.length,
  };
}

/** Runs every (embedder, mode) arm over the answerable questions. */
export async function runRetrievalEval(o: RetrievalEvalOptions): Promise<RetrievalArmResult[]> {
  const cutoff = o.cutoff ?? 10;
  const questions = o.questions.filter((q) => !q.unanswerable && q.doc);
  const out: RetrievalArmResult[] = [];
  for (const e of o.embedders) {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'candela-retrieval-eval-'));
    const config = Object.freeze({ ...loadConfig({}), port: 0, host: '127.0.0.1', dataDir, demoCorpus: false, cacheEnabled: false });
    const server = await startServer({ config, logger: pino({ level: 'silent' }), models: [{ name: e.model, role: 'embedder', path: path.join(o.modelsDir, e.model), queryInstruction: MODELS.find((m) => m.name === e.model)?.queryInstruction }] });
    try {
      await server.loaded;
      const ingestStart = performance.now();
      await ingestCorpus({ baseUrl: server.url, documents: o.documents });
      const ingestMs = performance.now() - ingestStart;
      for (const mode of o.modes) {
        const ranks: RetrievalArmResult['ranks'] = {};
        let ms = 0;
        for (const q of questions) {
          const t = performance.now();
          const res = await fetch(`${server.url}/v1/search`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ query: q.question, top_k: cutoff, retrieval: mode }),
          });
          if (res.status !== 200) throw new Error(`question '${q.id}': ${res.status} ${await res.text()}`);
          const body = (await res.json()) as { data: SearchHit[] };
          ms += performance.now() - t;
          ranks[q.id] = { doc: documentRank(body.data, q), answer: answerRank(body.data, q) };
        }
        const doc = scoreRanks(Object.values(ranks).map((r) => r.doc));
        const answer = scoreRanks(Object.values(ranks).map((r) => r.answer));
        const r: RetrievalArmResult = {
          label: `${mode}-${e.label}`,
          embedder: e.model,
          mode,
          questions: questions.length,
          recallAt3: doc.recall,
          mrr: doc.mrr,
          answerRecallAt3: answer.recall,
          answerMrr: answer.mrr,
          ranks,
          meanMs: ms / questions.length,
          ingestMs,
        };
        out.push(r);
        o.onArm?.(r);
      }
    } finally {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  return out;
}

/** The results as a Markdown table. */
export function formatRetrievalTable(results: readonly RetrievalArmResult[]): string {
  const f = (x: number, w: number) => x.toFixed(3).padStart(w);
  const rows = results.map(
    (r) => `| ${r.label.padEnd(16)} | ${String(r.questions).padStart(9)} | ${f(r.recallAt3, 12)} | ${f(r.mrr, 10)} | ${f(r.answerRecallAt3, 15)} | ${f(r.answerMrr, 13)} | ${r.meanMs.toFixed(1).padStart(13)} |`,
  );
  return [
    '| arm              | questions | doc recall@3 | doc MRR@10 | answer recall@3 | answer MRR@10 | search ms avg |',
    '|------------------|-----------|--------------|------------|-----------------|---------------|---------------|',
    ...rows,
  ].join('\n');
}
