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

/** The report's object: `scenarios` holds one entry per scenario run. */
export function jsonReport(info: RunInfo, results: readonly ScenarioResult[], card: Scorecard | null) {
  return {
    tool: 'candela loadtest',
    ...info,
    scenarios: results.map(({ samples: _samples, ...rest }) => rest),
    scorecard: card,
  };
}
