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

/** The default system prompt (CANDELA_RAG_SYSTEM_PROMPT replaces it; a request's `system_prompt` overrides both). */
export const DEFAULT_RAG_SYSTEM_PROMPT =
  'You answer questions using only the numbered sources provided. Cite sources in square brackets, like [1]. ' +
  'If the sources do not contain the answer, say that you do not know.';

/** The default layout of the user turn. */
export const DEFAULT_RAG_LAYOUT: Readonly<RagLayout> = Object.freeze({
  questionFirst: false,
  sourceHeader: 'title',
  answerCue: '',
  stop: [],
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
