/**
 * Questions the scenarios ask: a default set about the demo corpus (this
 * project's README, which a fresh server ingests), each of the first ones
 * with a hand-written paraphrase for the cache phases, or a file of one
 * question per line (`question<TAB>paraphrase` to give the paraphrase).
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../usage.ts';

/** A question and, where known, a paraphrase of it. */
export interface Question {
  text: string;
  paraphrase: string;
}

const DEFAULT: [string, string?][] = [
  ['How does Candela cancel a generation?', 'How is a generation cancelled in Candela?'],
  ['What does npm start do?', 'What happens when I run npm start?'],
  ['Which models does Candela serve by default?', 'What are the default models Candela serves?'],
  ['How does the semantic cache decide a hit?', 'How does the semantic cache decide that a question is a hit?'],
  ['What is the default cache similarity threshold?', 'What is the cache similarity threshold by default?'],
  ['What does the cost circuit breaker do when the budget is spent?', 'What does the cost breaker do once the budget is spent?'],
  ['How are API keys stored?', 'How does Candela store API keys?'],
  ['Which scopes can an API key have?', 'What scopes may an API key have?'],
  ['How do rate limits work in Candela?', 'How do Candela rate limits work?'],
  ['What does the X-Cache header say?', 'What does the X-Cache response header tell?'],
  ['How do I add documents to Candela?', 'How can I add documents to Candela?'],
  ['What does the /v1/batch route do?', 'What is the /v1/batch route for?'],
  ['Which metrics does /metrics expose?', 'What metrics are exposed at /metrics?'],
  ['What happens when the engine queue is full?', 'What happens if the engine queue is full?'],
  ['How does Candela share state between replicas?', 'How do Candela replicas share state?'],
  ['What is the default budget window?', 'What is the budget window by default?'],
  ['What does /health/ready report?', 'What does the /health/ready route report?'],
  ['Which OpenAI-compatible routes does Candela have?', 'What OpenAI-compatible routes does Candela offer?'],
  ['What does a cached stream replay?', 'What is replayed by a cached stream?'],
  ['How does Candela handle SIGTERM?', 'How is SIGTERM handled by Candela?'],
  ['What errors does Candela return for bad JSON?'],
  ['Where are documents stored?'],
  ['How large can a request body be?'],
  ['What does the embed route return?'],
  ['Which embedding model does the cache use?'],
  ['How long do cache entries live?'],
  ['How many cache entries are kept at most?'],
  ['What happens when Redis fails?'],
  ['How are prices per token configured?'],
  ['What does half-open mean for the breaker?'],
  ['How do I create an API key?'],
  ['How is a revoked key handled?'],
  ['What does the rerank route expect?'],
  ['What does the generate command print with --json?'],
  ['Which build feature enables CUDA?'],
  ['What is the tokenizer route for?'],
  ['How does Candela pick the device?'],
  ['What is CANDELA_MODELS used for?'],
  ['Where do the models come from?'],
  ['Is a model hub used at run time?'],
];

/** A paraphrase made mechanically, for questions given without one. */
export function reword(q: string): string {
  const body = q.replace(/[?.!\s]+$/u, '');
  return `Could you tell me: ${body.charAt(0).toLowerCase()}${body.slice(1)}?`;
}

/** The default questions about the demo corpus. */
export function defaultQuestions(): Question[] {
  return DEFAULT.map(([text, p]) => ({ text, paraphrase: p ?? reword(text) }));
}

/** Questions from a file: one a line, `#` comments and blank lines skipped, an optional tab-separated paraphrase. */
export function loadQuestions(file: string): Question[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--questions: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const out: Question[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim() || line.trimStart().startsWith('#')) continue;
    const [q, p] = line.split('\t', 2) as [string, string | undefined];
    if (q.trim().length < 3) throw new UsageError(`--questions: '${q.trim()}' is shorter than 3 characters`);
    out.push({ text: q.trim(), paraphrase: p?.trim() || reword(q.trim()) });
  }
  if (out.length === 0) throw new UsageError(`--questions: ${file} holds no questions`);
  return out;
}
