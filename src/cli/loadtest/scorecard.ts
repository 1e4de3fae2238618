/**
 * The scorecard: a machine's hourly price and the measured throughput give
 * what an answer and 1,000 output tokens cost on this machine, printed
 * beside the cost breaker's configured prices (the server's, from
 * /health/stats, or this machine's CANDELA_PRICE_* settings), so an operator
 * can set prices and the budget from a measurement.
 */
import type { ScenarioResult } from './run.ts';

/** Configured token prices, per 1,000 tokens. */
export interface ConfiguredPrices {
  input_per_1k: number | null;
  output_per_1k: number | null;
  /** Where they come from: the server's /health/stats, or the local configuration. */
  source: 'server' | 'local-config';
}

/** One scenario's costs at the measured rate. */
export interface ScorecardRow {
  scenario: string;
  answers_per_s: number;
  output_tokens_per_s: number;
  /** Machine cost of 1,000 output tokens at the measured throughput. */
  cost_per_1k_output_tokens: number | null;
  /** Machine cost of one successful answer at the measured rate. */
  cost_per_answer: number | null;
  /** What the breaker charges for an average answer of this run at the configured prices. */
  configured_cost_per_answer: number | null;
}

/** The whole scorecard. */
export interface Scorecard {
  price_per_hour: number;
  configured: ConfiguredPrices;
  rows: ScorecardRow[];
  /** The budget that caps spend at the machine's own cost over the breaker's window, if the window is known. */
  suggested: { output_per_1k: number | null; budget_per_window: number | null; window_s: number | null };
}

const r6 = (x: number) => Math.round(x * 1e6) / 1e6;

/** Reads the breaker's prices out of a /health/stats body; null when it has none. */
export function pricesFromStats(stats: unknown): { prices: ConfiguredPrices; windowS: number | null } | null {
  const b = (stats as { breaker?: { window_s?: unknown; prices?: { default?: { input_per_1k?: unknown; output_per_1k?: unknown } } } } | null)?.breaker;
  const d = b?.prices?.default;
  if (!d) return null;
  return {
    prices: {
      input_per_1k: typeof d.input_per_1k === 'number' ? d.input_per_1k : null,
      output_per_1k: typeof d.output_per_1k === 'number' ? d.output_per_1k : null,
      source: 'server',
    },
    windowS: typeof b?.window_s === 'number' ? b.window_s : null,
  };
}

/** Costs for every scenario that generated something. */
export function scorecard(results: readonly ScenarioResult[], pricePerHour: number, configured: ConfiguredPrices, windowS: number | null): Scorecard {
  const perS = pricePerHour / 3600;
  const rows: ScorecardRow[] = [];
  for (const r of results) {
    const answersPerS = r.duration_s > 0 ? r.successes / r.duration_s : 0;
    // Only scenarios that generate: a probe or a tokenize call is no answer.
    if (answersPerS === 0 || r.output_tokens === 0) continue;
    const ok = r.samples.filter((s) => s.error === null);
    const meanOut = ok.reduce((n, s) => n + (s.outputTokens ?? 0), 0) / ok.length;
    const withPrompt = ok.filter((s) => s.promptTokens !== null);
    const meanPrompt = withPrompt.length ? withPrompt.reduce((n, s) => n + s.promptTokens!, 0) / withPrompt.length : null;
    const confAnswer =
      configured.output_per_1k !== null && r.output_tokens > 0
        ? ((meanPrompt ?? 0) * (configured.input_per_1k ?? 0) + meanOut * configured.output_per_1k) / 1000
        : null;
    rows.push({
      scenario: r.scenario,
      answers_per_s: r6(answersPerS),
      output_tokens_per_s: r.output_tokens_per_s,
      cost_per_1k_output_tokens: r.output_tokens_per_s > 0 ? r6((perS / r.output_tokens_per_s) * 1000) : null,
      cost_per_answer: r6(perS / answersPerS),
      configured_cost_per_answer: confAnswer === null ? null : r6(confAnswer),
    });
  }
  // The best measured token throughput prices a token at the machine's cost at full load.
  const best = rows.filter((r) => r.cost_per_1k_output_tokens !== null).sort((a, b) => b.output_tokens_per_s - a.output_tokens_per_s)[0];
  return {
    price_per_hour: pricePerHour,
    configured,
    rows,
    suggested: {
      output_per_1k: best?.cost_per_1k_output_tokens ?? null,
      budget_per_window: windowS !== null ? r6((pricePerHour * windowS) / 3600) : null,
      window_s: windowS,
    },
  };
}
