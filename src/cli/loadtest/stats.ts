/**
 * From samples to the report's numbers: percentiles (linear interpolation,
 * as numpy and `vllm bench serve` compute them), rates, errors by status
 * and class, cache hit rate from `X-Cache`, goodput against SLOs, and
 * throughput over time.
 */
import { tpotMs, type ErrorClass, type Sample } from './client.ts';

/** p50/p95/p99/max (and mean) of one timing, in ms. */
export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** The timings an SLO may bound. */
export const SLO_METRICS = ['ttft_ms', 'tpot_ms', 'itl_ms', 'e2e_ms'] as const;
export type SloMetric = (typeof SLO_METRICS)[number];
/** Upper bounds per request, in ms. */
export type Slo = Partial<Record<SloMetric, number>>;

/** The q-quantile (0..1) with linear interpolation between ranks; NaN for none. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** Percentiles of `xs`, or null when there are none. */
export function percentiles(xs: readonly number[]): Percentiles | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { p50: r3(percentile(s, 0.5)), p95: r3(percentile(s, 0.95)), p99: r3(percentile(s, 0.99)), max: r3(s[s.length - 1]!), mean: r3(mean) };
}

/** Cache outcomes seen in `X-Cache`. */
export interface CacheStats {
  exact: number;
  semantic: number;
  miss: number;
  /** (exact + semantic) / all answers that carried the header. */
  hit_rate: number;
}

/** Requests that met every SLO, per second and as a share of all requests. */
export interface Goodput {
  slo: Slo;
  requests: number;
  requests_per_s: number;
  fraction: number;
}

/** The numbers of a set of samples (a scenario or one of its phases). */
export interface Summary {
  requests: number;
  successes: number;
  /** Failures by HTTP status, or by `timeout`, `network`, `stream_error`, `aborted` without one. */
  errors: Record<string, number>;
  error_classes: Partial<Record<ErrorClass, number>>;
  /** The most frequent failure reasons (class: detail), at most 10, with counts. */
  error_details: Record<string, number>;
  duration_s: number;
  rps: number;
  output_tokens: number;
  output_tokens_per_s: number;
  ttft_ms: Percentiles | null;
  tpot_ms: Percentiles | null;
  itl_ms: Percentiles | null;
  e2e_ms: Percentiles | null;
  cache: CacheStats | null;
  goodput: Goodput | null;
}

/** The key a failed sample is counted under in `errors`. */
export function errorKey(s: Sample): string {
  return s.status > 0 ? String(s.status) : (s.error ?? 'unknown');
}

/** Whether a successful sample met every bound of `slo` (a missing timing cannot meet a bound on it). */
export function meetsSlo(s: Sample, slo: Slo): boolean {
  const worstItl = s.itlMs.length ? Math.max(...s.itlMs) : null;
  const values: Record<SloMetric, number | null> = { ttft_ms: s.ttftMs, tpot_ms: tpotMs(s), itl_ms: worstItl, e2e_ms: s.e2eMs };
  for (const m of SLO_METRICS) {
    const bound = slo[m];
    if (bound === undefined) continue;
    const v = values[m];
    if (v === null || v > bound) return false;
  }
  return true;
}

/** Summarises `samples` over `durationS` seconds of wall time. */
export function summarize(samples: readonly Sample[], durationS: number, slo: Slo | null): Summary {
  const ok = samples.filter((s) => s.error === null);
  const errors: Record<string, number> = {};
  const classes: Partial<Record<ErrorClass, number>> = {};
  const details = new Map<string, number>();
  for (const s of samples) {
    if (s.error === null) continue;
    const k = errorKey(s);
    errors[k] = (errors[k] ?? 0) + 1;
    classes[s.error] = (classes[s.error] ?? 0) + 1;
    const d = `${s.error}: ${s.detail ?? ''}`;
    details.set(d, (details.get(d) ?? 0) + 1);
  }
  const outputTokens = ok.reduce((n, s) => n + (s.outputTokens ?? 0), 0);
  const streamed = ok.filter((s) => s.ttftMs !== null);
  const tpots = ok.map(tpotMs).filter((x): x is number => x !== null);
  const dur = Math.max(durationS, 1e-9);
  let cache: CacheStats | null = null;
  const withHeader = ok.filter((s) => s.cache !== null);
  if (withHeader.length) {
    const count = (v: string) => withHeader.filter((s) => s.cache === v).length;
    const exact = count('exact');
    const semantic = count('semantic');
    cache = { exact, semantic, miss: withHeader.length - exact - semantic, hit_rate: r3((exact + semantic) / withHeader.length) };
  }
  let goodput: Goodput | null = null;
  if (slo && Object.keys(slo).length) {
    const good = ok.filter((s) => meetsSlo(s, slo)).length;
    goodput = { slo, requests: good, requests_per_s: r3(good / dur), fraction: samples.length ? r3(good / samples.length) : 0 };
  }
  return {
    requests: samples.length,
    successes: ok.length,
    errors,
    error_classes: classes,
    error_details: Object.fromEntries([...details].sort((a, b) => b[1] - a[1]).slice(0, 10)),
    duration_s: r3(durationS),
    rps: r3(samples.length / dur),
    output_tokens: outputTokens,
    output_tokens_per_s: r3(outputTokens / dur),
    ttft_ms: percentiles(streamed.map((s) => s.ttftMs!)),
    tpot_ms: percentiles(tpots),
    itl_ms: percentiles(ok.flatMap((s) => s.itlMs)),
    e2e_ms: percentiles(ok.map((s) => s.e2eMs)),
    cache,
    goodput,
  };
}

/** One slice of a run: rates of finished requests, errors and output tokens. */
export interface TimelinePoint {
  /** Start of the slice, seconds into the run. */
  t_s: number;
  completed_per_s: number;
  errors_per_s: number;
  output_tokens_per_s: number;
}

/** Slice width for a run of `durationS`: about 50 slices, at least 0.1 s, whole seconds past 50 s. */
export function sliceWidthS(durationS: number): number {
  const w = durationS / 50;
  return durationS <= 50 ? Math.max(0.1, Math.ceil(w * 10) / 10) : Math.ceil(w);
}

/** Throughput over time: requests by the time they finished, in slices of {@link sliceWidthS}. */
export function timeline(samples: readonly Sample[], durationS: number): TimelinePoint[] {
  const w = sliceWidthS(durationS);
  const n = Math.max(1, Math.ceil(durationS / w));
  const acc = Array.from({ length: n }, () => ({ completed: 0, errors: 0, tokens: 0 }));
  for (const s of samples) {
    const b = acc[Math.min(n - 1, Math.max(0, Math.floor((s.startMs + s.e2eMs) / 1000 / w)))]!;
    if (s.error === null) {
      b.completed++;
      b.tokens += s.outputTokens ?? 0;
    } else b.errors++;
  }
  return acc.map((b, i) => ({ t_s: r3(i * w), completed_per_s: r3(b.completed / w), errors_per_s: r3(b.errors / w), output_tokens_per_s: r3(b.tokens / w) }));
}

/** A histogram of `xs` in `bins` equal bins from 0 to the max. */
export function histogram(xs: readonly number[], bins = 20): { edges: number[]; counts: number[] } | null {
  if (xs.length === 0) return null;
  const max = Math.max(...xs);
  const width = max > 0 ? max / bins : 1;
  const counts = new Array<number>(bins).fill(0);
  for (const x of xs) counts[Math.min(bins - 1, Math.floor(x / width))]!++;
  return { edges: Array.from({ length: bins + 1 }, (_, i) => r3(i * width)), counts };
}
