/**
 * The RAG prompt: a system prompt (the operator's, from the config, or the
 * caller's `system_prompt`) and a user turn laid out as numbered sources and
 * the question. The layout and the default system prompt were chosen by
 * measurement (`npm run eval:answers`; the variants are in
 * `src/eval/prompt-variants.ts`).
 */

/** How the user turn is laid out. */
export interface RagLayout {
  /** Ask the question before the sources too (small models lose a question read only after long sources). */
  questionFirst: boolean;
  /** Source header: `[1] Title` then the text on the next line, or just `[1] text`. */
  sourceHeader: 'title' | 'number';
  /** Text after the question that starts the model's turn off (e.g. `Answer:`); empty for none. */
  answerCue: string;
  /** Stop strings that end the answer (e.g. before the model starts a new "Question:"). */
  stop: string[];
  /** Worked examples, given as earlier user/assistant turns laid out like the real one. */
  examples?: readonly RagExample[];
  /** End every sentence of a source with its number, so a sentence copied into the answer carries its citation. */
  tagSentences?: boolean;
  /** One source per document, its retrieved chunks joined (`source-groups.ts`), instead of one per chunk. */
  groupByDocument?: boolean;
  /** Number the sources best-last, so the best source sits next to the question. */
  bestLast?: boolean;
}

/** A worked example: a question over its own sources, and the answer the model should imitate. */
export interface RagExample {
  question: string;
  sources: readonly PromptSource[];
  answer: string;
}

/** A chat message of the RAG prompt. */
export interface RagMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** A source as the prompt shows it. */
export interface PromptSource {
  title: string;
  text: string;
}

/**
 * The default system prompt (CANDELA_RAG_SYSTEM_PROMPT replaces it; a
 * request's `system_prompt` overrides both). No sample sentence in it: the
 * 0.5B model copies one verbatim ("The default is 10 [2].") into answers.
 */
export const DEFAULT_RAG_SYSTEM_PROMPT =
  'Answer the question in one short sentence, using only the numbered sources. ' +
  'Write the answer in words, then the number of the source it comes from in square brackets. ' +
  "If the sources do not contain the answer, reply: I don't know.";

const PUMP_SOURCES: readonly PromptSource[] = [
  { title: 'Pump manual', text: 'The pump runs on 24 V. Its maximum pressure is 6 bar.' },
  { title: 'Pump FAQ', text: 'The filter should be replaced every 3 months. Use only filters of type F-20.' },
];

/**
 * Two worked examples, given as earlier turns whatever the system prompt: one
 * answered in words with its citation, one the sources cannot answer.
 */
export const DEFAULT_RAG_EXAMPLES: readonly RagExample[] = Object.freeze([
  { question: 'How often should the filter be replaced?', sources: PUMP_SOURCES, answer: 'The filter should be replaced every 3 months [2].' },
  { question: 'Who manufactures the pump?', sources: PUMP_SOURCES, answer: "I don't know." },
]);

/**
 * The default layout: one source per document (its retrieved chunks joined),
 * headed `[n] Title`, every source sentence ending with its number, the
 * question last, the worked examples before it (`grouped` in
 * `src/eval/prompt-variants.ts`; `tagged-sentences` is the same with one
 * source per chunk).
 */
export const DEFAULT_RAG_LAYOUT: Readonly<RagLayout> = Object.freeze({
  questionFirst: false,
  sourceHeader: 'title',
  answerCue: '',
  stop: [],
  tagSentences: true,
  examples: DEFAULT_RAG_EXAMPLES,
  groupByDocument: true,
});

/** Ends every sentence of `text` with ` [n]`, before its `.`, `!` or `?` (as an answer cites: "… 3 months [2]."). */
export function tagSentences(text: string, n: number): string {
  const tagged = text.replace(/([.!?])(?=\s|$)/gu, ` [${n}]$1`);
  return /[.!?]$/u.test(tagged) ? tagged : `${tagged} [${n}]`;
}

/** Builds the user turn: numbered sources and the question, as `layout` says. */
export function ragUserPrompt(query: string, sources: readonly PromptSource[], layout: RagLayout = DEFAULT_RAG_LAYOUT): string {
  const blocks = sources
    .map((s, i) => {
      const text = layout.tagSentences ? tagSentences(s.text, i + 1) : s.text;
      return layout.sourceHeader === 'title' ? `[${i + 1}] ${s.title}\n${text}` : `[${i + 1}] ${text}`;
    })
    .join('\n\n');
  const parts = [
    ...(layout.questionFirst ? [`Question: ${query}`] : []),
    `Sources:\n\n${blocks || '(no sources found)'}`,
    `Question: ${query}${layout.answerCue ? `\n${layout.answerCue}` : ''}`,
  ];
  return parts.join('\n\n');
}

/** The whole conversation: system prompt, worked examples as earlier turns, then the question over its sources. */
export function ragMessages(system: string, query: string, sources: readonly PromptSource[], layout: RagLayout = DEFAULT_RAG_LAYOUT): RagMessage[] {
  return [
    { role: 'system', content: system },
    ...(layout.examples ?? []).flatMap((e): RagMessage[] => [
      { role: 'user', content: ragUserPrompt(e.question, e.sources, layout) },
      { role: 'assistant', content: e.answer },
    ]),
    { role: 'user', content: ragUserPrompt(query, sources, layout) },
  ];
}
