/**
 * The RAG prompt layouts measured by `npm run eval:answers --variant all`,
 * kept so the choice behind the default can be measured again (on another
 * model, or after a change to the engine). The default prompt in
 * `src/services/rag-prompt.ts` is the one that scored best.
 */
import { DEFAULT_RAG_EXAMPLES, DEFAULT_RAG_LAYOUT, DEFAULT_RAG_SYSTEM_PROMPT, type PromptSource, type RagExample, type RagLayout } from '../services/rag-prompt.ts';

/** A prompt to measure: system prompt and user-turn layout. */
export interface PromptVariant {
  name: string;
  description: string;
  system: string;
  layout: RagLayout;
}

/** The prompt Candela shipped before the evaluation existed. */
const ORIGINAL_SYSTEM =
  'You answer questions using only the numbered sources provided. Cite sources in square brackets, like [1]. ' +
  'If the sources do not contain the answer, say that you do not know.';
const ORIGINAL_LAYOUT: RagLayout = { questionFirst: false, sourceHeader: 'title', answerCue: '', stop: [] };

/** Answer first, then the citation, with the refusal spelled out. */
const ANSWER_FIRST_SYSTEM =
  'Answer the question in one short sentence, using only the numbered sources. ' +
  'Write the answer in words first, then the number of the source it comes from in square brackets, like: The default is 10 [2]. ' +
  "If the sources do not contain the answer, reply: I don't know.";

/** The same rules after a worked example (small models copy a shape more readily than they follow a rule). */
const ONE_SHOT_SYSTEM =
  'You answer questions from numbered sources.\n\n' +
  'Example:\n' +
  'Sources:\n[1] Pump manual\nThe pump runs on 24 V. Its maximum pressure is 6 bar.\n\n[2] Pump FAQ\nThe filter should be replaced every 3 months.\n\n' +
  'Question: How often should the filter be replaced?\n' +
  'Answer: The filter should be replaced every 3 months [2].\n\n' +
  'Answer in one sentence with the words of the sources, then cite the source number in square brackets. ' +
  "If the sources do not contain the answer, reply: I don't know.";

/** Rules without an inline sample sentence (the default system prompt). */
const RULES_SYSTEM = DEFAULT_RAG_SYSTEM_PROMPT;

const PUMP_SOURCES = DEFAULT_RAG_EXAMPLES[0]!.sources;

/** Two worked examples as earlier turns: one answered and cited, one the sources cannot answer (the default's). */
const EXAMPLES: readonly RagExample[] = DEFAULT_RAG_EXAMPLES;

/** The citation first: a small model readily starts with a bracket, and then goes on in words. */
const CITE_FIRST_SYSTEM =
  'Answer the question using only the numbered sources. ' +
  'Start with the number of the source that holds the answer in square brackets, then give the answer in one short sentence. ' +
  "If the sources do not contain the answer, reply: I don't know.";

const CITE_FIRST_EXAMPLES: readonly RagExample[] = [
  { question: 'How often should the filter be replaced?', sources: PUMP_SOURCES, answer: '[2] The filter should be replaced every 3 months.' },
  { question: 'Who manufactures the pump?', sources: PUMP_SOURCES, answer: "I don't know." },
];

/** The pump sources with a method to call, for an example whose answer is code. */
const PUMP_CODE_SOURCES: readonly PromptSource[] = [
  { title: 'Pump manual', text: 'The pump runs on 24 V. Its maximum pressure is 6 bar. Call pump.reset() to clear the error log.' },
  PUMP_SOURCES[1]!,
];

/** The default examples and a third whose answer is a method name: code answers get their citation too. */
const CODE_EXAMPLES: readonly RagExample[] = [
  EXAMPLES[0]!,
  { question: 'Which method clears the error log?', sources: PUMP_CODE_SOURCES, answer: 'Call `pump.reset()` to clear the error log [1].' },
  EXAMPLES[1]!,
];

/** The default rules, with the refusal made stricter: no guessing, and an answer must be stated by a source. */
const NO_GUESS_SYSTEM =
  'Answer the question in one short sentence, using only the numbered sources. ' +
  'Write the answer in words, then the number of the source it comes from in square brackets. ' +
  "If no source states the answer, do not guess: reply I don't know.";

/**
 * The default examples, the unanswerable one replaced by a near miss: the
 * sources hold a figure of the same kind (the maximum pressure), not the one
 * asked for (the minimum), and the answer is still "I don't know".
 */
const NEAR_MISS_EXAMPLES: readonly RagExample[] = [
  EXAMPLES[0]!,
  { question: 'What is the minimum pressure of the pump?', sources: PUMP_SOURCES, answer: "I don't know." },
];

/** Two worked examples as turns, every source sentence tagged with its number: one source per chunk. */
const TAGGED: RagLayout = { ...ORIGINAL_LAYOUT, tagSentences: true, examples: EXAMPLES };
/** The same with one source per document (the default's layout). */
const GROUPED: RagLayout = { ...TAGGED, groupByDocument: true };

/** Every variant, in the order they are measured. */
export const PROMPT_VARIANTS: readonly PromptVariant[] = [
  { name: 'original', description: 'the prompt before this evaluation: cite in brackets, sources then question', system: ORIGINAL_SYSTEM, layout: ORIGINAL_LAYOUT },
  { name: 'answer-first', description: 'answer in words first, then cite; explicit refusal', system: ANSWER_FIRST_SYSTEM, layout: ORIGINAL_LAYOUT },
  { name: 'question-twice', description: 'answer-first, question before and after the sources', system: ANSWER_FIRST_SYSTEM, layout: { ...ORIGINAL_LAYOUT, questionFirst: true } },
  { name: 'one-shot', description: 'a worked example in the system prompt', system: ONE_SHOT_SYSTEM, layout: ORIGINAL_LAYOUT },
  { name: 'short-headers', description: 'one-shot, sources headed by their number only', system: ONE_SHOT_SYSTEM, layout: { ...ORIGINAL_LAYOUT, sourceHeader: 'number' } },
  {
    name: 'answer-cue',
    description: 'one-shot, "Answer:" after the question, stop at a blank line or a new question',
    system: ONE_SHOT_SYSTEM,
    layout: { ...ORIGINAL_LAYOUT, answerCue: 'Answer:', stop: ['\n\n', '\nQuestion:'] },
  },
  { name: 'example-turns', description: 'rules, then two worked examples (one answered, one not) as earlier chat turns', system: RULES_SYSTEM, layout: { ...ORIGINAL_LAYOUT, examples: EXAMPLES } },
  {
    name: 'example-turns-short',
    description: 'example-turns with sources headed by their number only',
    system: RULES_SYSTEM,
    layout: { ...ORIGINAL_LAYOUT, sourceHeader: 'number', examples: EXAMPLES },
  },
  { name: 'cite-first-turns', description: 'the source number first, then the answer; two worked examples as earlier turns', system: CITE_FIRST_SYSTEM, layout: { ...ORIGINAL_LAYOUT, examples: CITE_FIRST_EXAMPLES } },
  { name: 'tagged-sentences', description: 'example-turns, every source sentence ends with its number (a copied sentence keeps its citation)', system: RULES_SYSTEM, layout: TAGGED },
  { name: 'grouped', description: 'tagged-sentences, one source per document (its retrieved chunks joined)', system: RULES_SYSTEM, layout: GROUPED },
  { name: 'best-last', description: 'tagged-sentences, sources numbered best-last (the best next to the question)', system: RULES_SYSTEM, layout: { ...TAGGED, bestLast: true } },
  { name: 'grouped-best-last', description: 'grouped, documents numbered best-last', system: RULES_SYSTEM, layout: { ...GROUPED, bestLast: true } },
  { name: 'grouped-code-example', description: 'grouped, and a third worked example whose answer is a method name', system: RULES_SYSTEM, layout: { ...GROUPED, examples: CODE_EXAMPLES } },
  { name: 'grouped-no-guess', description: 'grouped, a stricter refusal rule (no guessing)', system: NO_GUESS_SYSTEM, layout: GROUPED },
  { name: 'grouped-near-miss', description: 'grouped, the unanswerable example a near miss (maximum given, minimum asked)', system: RULES_SYSTEM, layout: { ...GROUPED, examples: NEAR_MISS_EXAMPLES } },
  { name: 'default', description: "the server's default prompt", system: DEFAULT_RAG_SYSTEM_PROMPT, layout: DEFAULT_RAG_LAYOUT },
];
