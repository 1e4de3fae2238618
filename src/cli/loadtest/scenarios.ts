/**
 * The named scenarios: the seven of the Rust load client Candela replaces
 * (health, tokenize, generate, batch-tokenize, batch-generate, sustained,
 * spike), a k6-style ramp, `north-south` (streaming RAG at 50 concurrency),
 * `cache-phases` (cold, new, exact repeats, paraphrases) and `soak` (a fixed
 * rate for a duration). Each builds its phases from a context: Candela's own
 * routes, or any OpenAI-compatible server with `--openai`.
 */
import type { Arrival } from './arrivals.ts';
import type { RequestSpec } from './client.ts';
import type { Question } from './questions.ts';

/** What a scenario is built from. */
export interface ScenarioContext {
  /** Candela's routes, or OpenAI-compatible ones only. */
  target: 'candela' | 'openai';
  /** Multiplies request counts, durations and users (min 1; the spike keeps its steps). */
  scale: number;
  /** Completion tokens per request; each scenario has its own default. */
  maxTokens?: number;
  /** Model to ask for (Candela: its default LLM when absent). */
  model?: string;
  questions: Question[];
  /** Ask servers to generate all max_tokens (vLLM's and llama.cpp's ignore_eos), so outputs are equal in length. */
  ignoreEos: boolean;
  /** Seed of the open loop's arrival times. */
  seed: number;
}

/** One phase: arrivals and the request each one sends. */
export interface Phase {
  name: string;
  arrival: Arrival;
  request: (index: number) => RequestSpec;
}

/** A named scenario. */
export interface Scenario {
  name: string;
  description: string;
  /** Whether it runs against an OpenAI-compatible peer (some need Candela's own routes). */
  openai: boolean;
  /** Whether /metrics is read at the start, middle and end (RSS, server latency drift). */
  soak?: boolean;
  phases: (ctx: ScenarioContext) => Phase[];
}

/** Seconds a count-bounded closed loop may take at most. */
const COUNT_BOUND_S = 3600;

const count = (ctx: ScenarioContext, n: number) => Math.max(1, Math.round(n * ctx.scale));
const seconds = (ctx: ScenarioContext, s: number) => Math.max(0.5, s * ctx.scale);
const closed = (users: number, requests: number): Arrival => ({ kind: 'closed', stages: [{ users, durationS: COUNT_BOUND_S }], requests });
const question = (ctx: ScenarioContext, i: number) => ctx.questions[i % ctx.questions.length]!;

/** A streamed generation of `prompt`: Candela's /v1/generate/stream or an OpenAI chat completion. */
export function generation(ctx: ScenarioContext, prompt: string, defaultMax: number): RequestSpec {
  const max = ctx.maxTokens ?? defaultMax;
  const messages = [{ role: 'user', content: prompt }];
  const eos = ctx.ignoreEos ? { ignore_eos: true } : {};
  const model = ctx.model ? { model: ctx.model } : {};
  if (ctx.target === 'openai') {
    return {
      method: 'POST',
      path: '/v1/chat/completions',
      kind: 'openai-sse',
      body: { ...model, messages, max_tokens: max, temperature: 0, stream: true, stream_options: { include_usage: true }, ...eos },
    };
  }
  return { method: 'POST', path: '/v1/generate/stream', kind: 'candela-sse', body: { ...model, messages, max_tokens: max, temperature: 0, ...eos } };
}

/** A streamed RAG answer (Candela) or, against a peer without RAG, the same question as a chat completion. */
export function ragQuery(ctx: ScenarioContext, q: string, defaultMax: number, cache: boolean): RequestSpec {
  if (ctx.target === 'openai') return generation(ctx, q, defaultMax);
  const eos = ctx.ignoreEos ? { ignore_eos: true } : {};
  const model = ctx.model ? { model: ctx.model } : {};
  return { method: 'POST', path: '/v1/query/stream', kind: 'candela-sse', body: { ...model, query: q, max_tokens: ctx.maxTokens ?? defaultMax, cache, ...eos } };
}

const health = (ctx: ScenarioContext): RequestSpec =>
  ctx.target === 'openai' ? { method: 'GET', path: '/v1/models', kind: 'json' } : { method: 'GET', path: '/health', kind: 'json' };

const tokenize = (ctx: ScenarioContext, text: string | string[]): RequestSpec => ({
  method: 'POST',
  path: '/v1/tokenize',
  kind: 'json',
  body: { ...(ctx.model ? { model: ctx.model } : {}), text },
});

/** Every scenario, in the order `--scenario all` runs them. */
export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'health',
    description: 'GET /health (a peer: /v1/models), 10 users, 100 requests',
    openai: true,
    phases: (ctx) => [{ name: 'health', arrival: closed(count(ctx, 10), count(ctx, 100)), request: () => health(ctx) }],
  },
  {
    name: 'tokenize',
    description: 'POST /v1/tokenize, one text, 5 users, 50 requests (Candela only)',
    openai: false,
    phases: (ctx) => [{ name: 'tokenize', arrival: closed(count(ctx, 5), count(ctx, 50)), request: (i) => tokenize(ctx, question(ctx, i).text) }],
  },
  {
    name: 'generate',
    description: 'streamed generation (32 tokens), 5 users, 25 requests',
    openai: true,
    phases: (ctx) => [{ name: 'generate', arrival: closed(count(ctx, 5), count(ctx, 25)), request: (i) => generation(ctx, question(ctx, i).text, 32) }],
  },
  {
    name: 'batch-tokenize',
    description: 'POST /v1/tokenize with 3 texts each, 5 users, 25 requests (Candela only)',
    openai: false,
    phases: (ctx) => [
      {
        name: 'batch-tokenize',
        arrival: closed(count(ctx, 5), count(ctx, 25)),
        request: (i) => tokenize(ctx, [0, 1, 2].map((k) => question(ctx, 3 * i + k).text)),
      },
    ],
  },
  {
    name: 'batch-generate',
    description: '2 prompts per request (Candela: /v1/batch RAG, uncached; a peer: /v1/completions with a prompt list), 3 users, 15 requests',
    openai: true,
    phases: (ctx) => [
      {
        name: 'batch-generate',
        arrival: closed(count(ctx, 3), count(ctx, 15)),
        request: (i): RequestSpec => {
          const qs = [question(ctx, 2 * i).text, question(ctx, 2 * i + 1).text];
          const max = ctx.maxTokens ?? 16;
          const eos = ctx.ignoreEos ? { ignore_eos: true } : {};
          const model = ctx.model ? { model: ctx.model } : {};
          if (ctx.target === 'openai') return { method: 'POST', path: '/v1/completions', kind: 'json', body: { ...model, prompt: qs, max_tokens: max, temperature: 0, ...eos } };
          return { method: 'POST', path: '/v1/batch', kind: 'json', body: { queries: qs.map((query) => ({ ...model, query, max_tokens: max, cache: false, ...eos })) } };
        },
      },
    ],
  },
  {
    name: 'sustained',
    description: 'streamed generation (16 tokens), 10 users for 30 s',
    openai: true,
    phases: (ctx) => [
      { name: 'sustained', arrival: { kind: 'closed', stages: [{ users: count(ctx, 10), durationS: seconds(ctx, 30) }] }, request: (i) => generation(ctx, question(ctx, i).text, 16) },
    ],
  },
  {
    name: 'spike',
    description: 'streamed generation (16 tokens): 1 user, then 2× and 20× that, then back to 1; 10 s a step',
    openai: true,
    phases: (ctx) => {
      const d = seconds(ctx, 10);
      return [
        {
          name: 'spike',
          arrival: { kind: 'closed', stages: [1, 2, 20, 1].map((users) => ({ users, durationS: d })) },
          request: (i) => generation(ctx, question(ctx, i).text, 16),
        },
      ];
    },
  },
  {
    name: 'ramp',
    description: 'k6-style ramp of streamed generation (16 tokens): 0→10 users over 20 s, hold 20 s, →50 over 20 s, →0 over 10 s',
    openai: true,
    phases: (ctx) => [
      {
        name: 'ramp',
        arrival: {
          kind: 'closed',
          stages: [
            { users: count(ctx, 10), durationS: seconds(ctx, 20), ramp: true },
            { users: count(ctx, 10), durationS: seconds(ctx, 20) },
            { users: count(ctx, 50), durationS: seconds(ctx, 20), ramp: true },
            { users: 0, durationS: seconds(ctx, 10), ramp: true },
          ],
        },
        request: (i) => generation(ctx, question(ctx, i).text, 16),
      },
    ],
  },
  {
    name: 'north-south',
    description: 'streamed RAG answers (80 tokens, cache off), 50 users, 500 requests (a peer: the same questions as chat completions)',
    openai: true,
    phases: (ctx) => [{ name: 'north-south', arrival: closed(count(ctx, 50), count(ctx, 500)), request: (i) => ragQuery(ctx, question(ctx, i).text, 80, false) }],
  },
  {
    name: 'cache-phases',
    description: 'streamed RAG answers (80 tokens, cache on) in phases: 20 cold questions, 20 new ones, exact repeats of the cold ones, paraphrases of them; 4 users',
    openai: true,
    phases: (ctx) => {
      const n = Math.max(1, Math.min(count(ctx, 20), Math.floor(ctx.questions.length / 2)));
      const users = count(ctx, 4);
      const cold = ctx.questions.slice(0, n);
      const fresh = ctx.questions.slice(n, 2 * n);
      const phase = (name: string, texts: string[]): Phase => ({ name, arrival: closed(users, texts.length), request: (i) => ragQuery(ctx, texts[i]!, 80, true) });
      return [
        phase('cold', cold.map((q) => q.text)),
        phase('new', fresh.map((q) => q.text)),
        phase('exact-repeat', cold.map((q) => q.text)),
        phase('paraphrase', cold.map((q) => q.paraphrase)),
      ];
    },
  },
  {
    name: 'soak',
    description: 'streamed generation (16 tokens) at 2 requests/s (Poisson, at most 8 in flight) for 120 s; server RSS and latency drift from /metrics',
    openai: true,
    soak: true,
    phases: (ctx) => [
      {
        name: 'soak',
        arrival: { kind: 'open', rate: 2, maxConcurrency: 8, durationS: seconds(ctx, 120), seed: ctx.seed },
        request: (i) => generation(ctx, question(ctx, i).text, 16),
      },
    ],
  },
];

/** The scenarios named in `names` (`all` for every one); unknown names throw with the list. */
export function pickScenarios(names: string[]): Scenario[] {
  if (names.includes('all')) return [...SCENARIOS];
  return names.map((n) => {
    const s = SCENARIOS.find((x) => x.name === n);
    if (!s) throw new Error(`unknown scenario '${n}' (${SCENARIOS.map((x) => x.name).join(', ')}, all)`);
    return s;
  });
}
