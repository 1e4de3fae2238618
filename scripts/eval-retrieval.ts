/**
 * Retrieval quality table (a script that prints numbers; the test of the
 * same name asserts on them).
 *
 *   npm run eval:retrieval -- [--embedders all-minilm-l6-v2[,other-model]] [--modes dense,hybrid]
 *
 * Corpus: the answer-eval documents (eval/answers/questions.json) plus the
 * distractors of eval/retrieval/distractors.json, all read from pinned npm
 * packages; questions: the answerable answer-eval questions.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, PROJECT_ROOT } from '../src/config.ts';
import { loadEvalSet, readCorpus } from '../src/eval/answer-eval.ts';
import { formatRetrievalTable, runRetrievalEval } from '../src/eval/retrieval-eval.ts';
import { RETRIEVAL_MODES, type RetrievalMode } from '../src/services/retrieval/retriever.ts';

const LABELS: Record<string, string> = { 'all-minilm-l6-v2': 'MiniLM', 'bge-small-en-v1.5': 'BGE' };

const { values } = parseArgs({ options: { embedders: { type: 'string', default: 'all-minilm-l6-v2,bge-small-en-v1.5' }, modes: { type: 'string', default: 'dense,hybrid' } } });
const modes = values.modes.split(',').map((m) => {
  if (!(RETRIEVAL_MODES as readonly string[]).includes(m)) throw new Error(`unknown mode '${m}' (known: ${RETRIEVAL_MODES.join(', ')})`);
  return m as RetrievalMode;
});
const nodeModules = path.join(PROJECT_ROOT, 'node_modules');
const set = loadEvalSet(path.join(PROJECT_ROOT, 'eval', 'answers', 'questions.json'));
const documents = [...readCorpus(set, nodeModules), ...readCorpus(loadEvalSet(path.join(PROJECT_ROOT, 'eval', 'retrieval', 'distractors.json')), nodeModules)];
const results = await runRetrievalEval({
  questions: set.questions,
  documents,
  embedders: values.embedders.split(',').map((model) => ({ label: LABELS[model] ?? model, model })),
  modes,
  modelsDir: loadConfig().modelsDir,
  onArm: (r) => process.stderr.write(`${r.label}: doc recall@3 ${r.recallAt3.toFixed(3)}, answer recall@3 ${r.answerRecallAt3.toFixed(3)}\n`),
});
process.stdout.write(`${documents.length} documents, ${results[0]?.questions ?? 0} questions\n${formatRetrievalTable(results)}\n`);
