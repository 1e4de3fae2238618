/**
 * Runs scenarios: each phase's arrivals send requests through the client,
 * every sample is kept, and the phases and the whole scenario are
 * summarised. A soak run also scrapes /metrics at its start, middle and end.
 */
import { plannedSeconds, runArrivals, type Bounds } from './arrivals.ts';
import type { LoadClient, Sample } from './client.ts';
import { meanBetween, readScrape, type Scrape } from './prometheus.ts';
import type { Scenario, ScenarioContext } from './scenarios.ts';
import { percentiles, summarize, timeline, type Slo, type Summary, type TimelinePoint } from './stats.ts';

/** Where a run stands, for the progress line. */
export interface Progress {
  scenario: string;
  phase: string;
  elapsedS: number;
  plannedS: number;
  /** The phase's request count, when it is bounded by one. */
  requests: number | null;
  done: number;
  errors: number;
  inFlight: number;
}

/** What a soak run saw on the server and the client, start against end. */
export interface SoakReport {
  rss_start_bytes: number | null;
  rss_end_bytes: number | null;
  rss_growth_bytes: number | null;
  /** Server mean e2e (ms) over the first and second halves of the run, from /metrics. */
  server_e2e_mean_first_half_ms: number | null;
  server_e2e_mean_second_half_ms: number | null;
  /** Client p50 e2e (ms) of the first and last fifth of the requests. */
  client_e2e_p50_first_fifth_ms: number | null;
  client_e2e_p50_last_fifth_ms: number | null;
  /** Last fifth ÷ first fifth (client p50 e2e); > 1 means slower by the end. */
  client_drift_ratio: number | null;
}

/** One scenario's result. */
export interface ScenarioResult extends Summary {
  scenario: string;
  description: string;
  target: 'candela' | 'openai';
  /** What ended each phase's arrivals (requests, duration, aborted). */
  stopped_by: string[];
  phases: (Summary & { name: string })[];
  timeline: TimelinePoint[];
  soak: SoakReport | null;
  /** Every sample, for the HTML report's histograms (left out of the JSON). */
  samples: Sample[];
}

/** Options of {@link runScenario}. */
export interface RunOptions {
  client: LoadClient;
  ctx: ScenarioContext;
  bounds: Bounds;
  slo: Slo | null;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

async function scrape(client: LoadClient): Promise<Scrape | null> {
  try {
    return readScrape(await client.getText('/metrics'));
  } catch {
    return null;
  }
}

function soakReport(start: Scrape | null, mid: Scrape | null, end: Scrape | null, samples: Sample[]): SoakReport {
  const ok = [...samples].filter((s) => s.error === null).sort((a, b) => a.startMs - b.startMs);
  const fifth = Math.floor(ok.length / 5);
  const first = fifth ? percentiles(ok.slice(0, fifth).map((s) => s.e2eMs))?.p50 ?? null : null;
  const last = fifth ? percentiles(ok.slice(-fifth).map((s) => s.e2eMs))?.p50 ?? null : null;
  const rs = start?.rssBytes ?? null;
  const re = end?.rssBytes ?? null;
  return {
    rss_start_bytes: rs,
    rss_end_bytes: re,
    rss_growth_bytes: rs !== null && re !== null ? re - rs : null,
    server_e2e_mean_first_half_ms: start && mid ? meanBetween(start, mid) : null,
    server_e2e_mean_second_half_ms: mid && end ? meanBetween(mid, end) : null,
    client_e2e_p50_first_fifth_ms: first,
    client_e2e_p50_last_fifth_ms: last,
    client_drift_ratio: first && last !== null ? Math.round((last / first) * 1000) / 1000 : null,
  };
}

/** Runs one scenario's phases in order and summarises them. */
export async function runScenario(scenario: Scenario, o: RunOptions): Promise<ScenarioResult> {
  const all: Sample[] = [];
  const phases: ScenarioResult['phases'] = [];
  const stoppedBy: string[] = [];
  const t0 = performance.now();
  const start = scenario.soak ? await scrape(o.client) : null;
  let mid: Scrape | null = null;
  for (const phase of scenario.phases(o.ctx)) {
    if (o.signal?.aborted) break;
    const samples: Sample[] = [];
    const p0 = performance.now();
    let inFlight = 0;
    let errors = 0;
    const planned = plannedSeconds(phase.arrival);
    const tick = setInterval(
      () => o.onProgress?.({ scenario: scenario.name, phase: phase.name, elapsedS: (performance.now() - p0) / 1000, plannedS: planned, requests: phase.arrival.requests ?? null, done: samples.length, errors, inFlight }),
      250,
    );
    const midTimer = scenario.soak
      ? setTimeout(() => {
          void scrape(o.client).then((s) => (mid = s));
        }, (planned * 1000) / 2)
      : undefined;
    try {
      const res = await runArrivals(
        phase.arrival,
        async (i, signal) => {
          inFlight++;
          const r = await o.client.send(phase.request(i), signal);
          inFlight--;
          const { sentAt, ...rest } = r;
          const s: Sample = { ...rest, startMs: sentAt - p0 };
          if (s.error) errors++;
          samples.push(s);
        },
        o.bounds,
        o.signal,
      );
      stoppedBy.push(res.stoppedBy);
      const dur = res.wallMs / 1000;
      phases.push({ name: phase.name, ...summarize(samples, dur, o.slo) });
      // Samples on the scenario's clock, for its timeline.
      const offset = p0 - t0;
      for (const s of samples) all.push({ ...s, startMs: s.startMs + offset });
    } finally {
      clearInterval(tick);
      clearTimeout(midTimer);
    }
  }
  const end = scenario.soak ? await scrape(o.client) : null;
  const durationS = (performance.now() - t0) / 1000;
  return {
    scenario: scenario.name,
    description: scenario.description,
    target: o.ctx.target,
    ...summarize(all, durationS, o.slo),
    stopped_by: stoppedBy,
    phases,
    timeline: timeline(all, durationS),
    soak: scenario.soak ? soakReport(start, mid, end, all) : null,
    samples: all,
  };
}
