/** The JSON report: the run's settings, one object per scenario (no raw samples), and the scorecard. */
import type { ScenarioResult } from './run.ts';
import type { Scorecard } from './scorecard.ts';
import type { Slo } from './stats.ts';

/** Settings of a run, echoed into its reports. */
export interface RunInfo {
  url: string;
  target: 'candela' | 'openai';
  model: string | null;
  started_at: string;
  scale: number;
  max_tokens: number | null;
  ignore_eos: boolean;
  slo: Slo | null;
  seed: number;
}

/** An OpenAI-compatible peer loaded in the same run, and its results. */
export interface PeerRun {
  url: string;
  model: string | null;
  results: readonly ScenarioResult[];
}

const withoutSamples = (results: readonly ScenarioResult[]) => results.map(({ samples: _samples, ...rest }) => rest);

/** The report's object: `scenarios` holds one entry per scenario run; `peers` the same for each peer. */
export function jsonReport(info: RunInfo, results: readonly ScenarioResult[], card: Scorecard | null, peers: readonly PeerRun[] = []) {
  return {
    tool: 'candela loadtest',
    ...info,
    scenarios: withoutSamples(results),
    scorecard: card,
    ...(peers.length ? { peers: peers.map((p) => ({ url: p.url, model: p.model, scenarios: withoutSamples(p.results) })) } : {}),
  };
}
