/**
 * Retrieval quality table (a script that prints numbers; the test of the
 * same name asserts on them).
 *
 *   npm run eval:retrieval -- [--set retrieval|answers] [--max-doc-chars N] [--embedders all-minilm-l6-v2[,other-model]] [--modes dense,hybrid]
 *
 * Sets (all text read from pinned npm packages):
 * - retrieval (default): eval/retrieval/questions.json, written for this
 *   evaluation and never tuned against an embedder, over its own 50 documents.
 * - answers: the answer-eval questions (eval/answers/questions.json) over their
 *   documents plus the distractors of eval/retrieval/distractors.json. Some of
 *   those questions were reworded until MiniLM found their answer, so this set
 *   favours MiniLM: it is not a fair comparison of embedders.
 *
 * --max-doc-chars keeps only the documents of at most N characters and their
 * questions (the test runs the retrieval set with 15000 to bound its time).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, PROJECT_ROOT } from '../src/config.ts';
import { loadEvalSet, readCorpus, type EvalSet } from '../src/eval/answer-eval.ts';
import { formatRetrievalTable, limitCorpus, runRetrievalEval } from '../src/eval/retrieval-eval.ts';
import { RETRIEVAL_MODES, type RetrievalMode } from '../src/services/retrieval/retriever.ts';

const LABELS: Record<string, string> = { 'all-minilm-l6-v2': 'MiniLM', 'bge-small-en-v1.5': 'BGE' };

const { values } = parseArgs({ options: { set: { type: 'string', default: 'retrieval' }, 'max-doc-chars': { type: 'string' }, embedders: { type: 'string', default: 'all-minilm-l6-v2,bge-small-en-v1.5' }, modes: { type: 'string', default: 'dense,hybrid' } } });
const modes = values.modes.split(',').map((m) => {
  if (!(RETRIEVAL_MODES as readonly string[]).includes(m)) throw new Error(`unknown mode '${m}' (known: ${RETRIEVAL_MODES.join(', ')})`);
  return m as RetrievalMode;
});
const nodeModules = path.join(PROJECT_ROOT, 'node_modules');
const evalDir = path.join(PROJECT_ROOT, 'eval');
let set: EvalSet;
let documents: { id: string; title: string; text: string }[];
if (values.set === 'retrieval') {
  set = loadEvalSet(path.join(evalDir, 'retrieval', 'questions.json'));
  documents = readCorpus(set, nodeModules);
} else if (values.set === 'answers') {
  set = loadEvalSet(path.join(evalDir, 'answers', 'questions.json'));
  documents = [...readCorpus(set, nodeModules), ...readCorpus(loadEvalSet(path.join(evalDir, 'retrieval', 'distractors.json')), nodeModules)];
} else {
  throw new Error(`unknown set '${values.set}' (known: retrieval, answers)`);
}
if (values['max-doc-chars'] !== undefined) {
  const max = Number(values['max-doc-chars']);
  if (!Number.isInteger(max) || max <= 0) throw new Error(`--max-doc-chars must be a positive integer, not '${values['max-doc-chars']}'`);
  ({ questions: set.questions, documents } = limitCorpus(set.questions, documents, max));
}
const started = performance.now();
const results = await runRetrievalEval({
  questions: set.questions,
  documents,
  embedders: values.embedders.split(',').map((model) => ({ label: LABELS[model] ?? model, model })),
  modes,
  modelsDir: loadConfig().modelsDir,
  onArm: (r) => process.stderr.write(`${r.label}: doc recall@3 ${r.recallAt3.toFixed(3)}, answer recall@3 ${r.answerRecallAt3.toFixed(3)}, ingest ${(r.ingestMs / 1000).toFixed(1)} s\n`),
});
process.stdout.write(`set '${values.set}': ${documents.length} documents, ${results[0]?.questions ?? 0} questions, ${((performance.now() - started) / 1000).toFixed(1)} s\n${formatRetrievalTable(results)}\n`);
