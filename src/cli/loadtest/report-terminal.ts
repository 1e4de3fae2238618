/** The terminal report: a progress line while running, then a block per scenario and the scorecard. */
import type { Progress, ScenarioResult } from './run.ts';
import type { Scorecard } from './scorecard.ts';
import type { Percentiles, Summary } from './stats.ts';

/** One status line (rewritten in place on a terminal). */
export function progressLine(p: Progress): string {
  const name = `${p.scenario}${p.phase !== p.scenario ? `:${p.phase}` : ''}`;
  const done = p.requests !== null ? `done ${p.done}/${p.requests}` : `done ${p.done}`;
  const time = p.requests !== null ? `${p.elapsedS.toFixed(1)} s` : `${p.elapsedS.toFixed(1)}/${p.plannedS.toFixed(0)} s`;
  return `${name}  ${time}  ${done}  errors ${p.errors}  in flight ${p.inFlight}`;
}

const fmt = (x: number | null | undefined, d = 1) => (x == null || !Number.isFinite(x) ? '-' : x.toFixed(d));

function timingRows(s: Summary): string[] {
  const rows: [string, Percentiles | null][] = [
    ['ttft', s.ttft_ms],
    ['tpot', s.tpot_ms],
    ['itl', s.itl_ms],
    ['e2e', s.e2e_ms],
  ];
  const out = [`    ${'ms'.padEnd(6)}${['p50', 'p95', 'p99', 'max'].map((h) => h.padStart(10)).join('')}`];
  for (const [name, p] of rows) {
    if (!p) continue;
    out.push(`    ${name.padEnd(6)}${[p.p50, p.p95, p.p99, p.max].map((x) => fmt(x).padStart(10)).join('')}`);
  }
  return out;
}

function errorsText(s: Summary): string {
  const parts = Object.entries(s.errors).map(([k, n]) => `${k}×${n}`);
  return parts.length ? parts.join(' ') : 'none';
}

function cacheText(s: Summary): string | null {
  return s.cache ? `${(s.cache.hit_rate * 100).toFixed(0)}% (exact ${s.cache.exact}, semantic ${s.cache.semantic}, miss ${s.cache.miss})` : null;
}

/** A readable block for one scenario, with its phases when it has several. */
export function scenarioBlock(r: ScenarioResult): string {
  const lines = [
    `${r.scenario} — ${r.description}`,
    `  ${r.requests} requests (${r.successes} ok) in ${fmt(r.duration_s)} s: ${fmt(r.rps, 2)} req/s, ${fmt(r.output_tokens_per_s)} output tokens/s; errors: ${errorsText(r)}`,
    ...timingRows(r),
  ];
  const details = Object.entries(r.error_details);
  if (details.length) lines.push(`  failures: ${details.map(([d, n]) => `${n}× ${d}`).join('; ')}`);
  const cache = cacheText(r);
  if (cache) lines.push(`  cache hit rate: ${cache}`);
  if (r.goodput) {
    const slo = Object.entries(r.goodput.slo).map(([k, v]) => `${k}≤${v}`).join(', ');
    lines.push(`  goodput: ${fmt(r.goodput.requests_per_s, 2)} req/s (${(r.goodput.fraction * 100).toFixed(0)}% of requests) within ${slo}`);
  }
  if (r.phases.length > 1) {
    lines.push(`  ${'phase'.padEnd(14)}${'req'.padStart(6)}${'ok'.padStart(6)}${'e2e p50'.padStart(10)}${'ttft p50'.padStart(10)}  cache hit rate`);
    for (const p of r.phases) {
      lines.push(`  ${p.name.padEnd(14)}${String(p.requests).padStart(6)}${String(p.successes).padStart(6)}${fmt(p.e2e_ms?.p50).padStart(10)}${fmt(p.ttft_ms?.p50).padStart(10)}  ${cacheText(p) ?? '-'}`);
    }
  }
  if (r.soak) {
    const mb = (b: number | null) => (b === null ? '-' : (b / 2 ** 20).toFixed(1));
    const s = r.soak;
    lines.push(`  server RSS: ${mb(s.rss_start_bytes)} → ${mb(s.rss_end_bytes)} MiB`);
    lines.push(`  e2e drift: client p50 ${fmt(s.client_e2e_p50_first_fifth_ms)} → ${fmt(s.client_e2e_p50_last_fifth_ms)} ms (×${fmt(s.client_drift_ratio, 2)}); server mean ${fmt(s.server_e2e_mean_first_half_ms)} → ${fmt(s.server_e2e_mean_second_half_ms)} ms`);
  }
  return lines.join('\n');
}

/** The scorecard as text. */
export function scorecardBlock(c: Scorecard): string {
  const money = (x: number | null) => (x === null ? '-' : x < 0.01 ? x.toExponential(2) : x.toFixed(4));
  const lines = [
    `scorecard at ${c.price_per_hour}/hour (configured prices, ${c.configured.source}: input ${money(c.configured.input_per_1k)}, output ${money(c.configured.output_per_1k)} per 1k tokens)`,
    `  ${'scenario'.padEnd(16)}${'answers/s'.padStart(11)}${'tok/s'.padStart(9)}${'per 1k out'.padStart(12)}${'per answer'.padStart(12)}${'configured'.padStart(12)}`,
  ];
  for (const r of c.rows) {
    lines.push(
      `  ${r.scenario.padEnd(16)}${fmt(r.answers_per_s, 2).padStart(11)}${fmt(r.output_tokens_per_s).padStart(9)}${money(r.cost_per_1k_output_tokens).padStart(12)}${money(r.cost_per_answer).padStart(12)}${money(r.configured_cost_per_answer).padStart(12)}`,
    );
  }
  if (c.suggested.output_per_1k !== null) {
    lines.push(`  at the best measured throughput a 1k output tokens costs ${money(c.suggested.output_per_1k)}: CANDELA_PRICE_OUTPUT_PER_1K=${c.suggested.output_per_1k}`);
  }
  if (c.suggested.budget_per_window !== null) {
    lines.push(`  the machine's cost over the breaker's ${c.suggested.window_s} s window: CANDELA_BUDGET=${c.suggested.budget_per_window}`);
  }
  return lines.join('\n');
}

/** The servers of one run side by side, scenario by scenario. */
export function comparisonTable(runs: readonly { server: string; results: readonly ScenarioResult[] }[]): string {
  const head = `${'scenario'.padEnd(14)}${'server'.padEnd(30)}${'req/s'.padStart(8)}${'tok/s'.padStart(9)}${'ttft p50'.padStart(10)}${'ttft p95'.padStart(10)}${'tpot p50'.padStart(10)}${'e2e p50'.padStart(10)}${'e2e p95'.padStart(10)}  errors`;
  const lines = ['side by side', head];
  const names = [...new Set(runs.flatMap((r) => r.results.map((x) => x.scenario)))];
  for (const n of names) {
    for (const run of runs) {
      const r = run.results.find((x) => x.scenario === n);
      if (!r) continue;
      lines.push(
        `${n.padEnd(14)}${run.server.padEnd(30)}${fmt(r.rps, 2).padStart(8)}${fmt(r.output_tokens_per_s).padStart(9)}${fmt(r.ttft_ms?.p50).padStart(10)}${fmt(r.ttft_ms?.p95).padStart(10)}${fmt(r.tpot_ms?.p50).padStart(10)}${fmt(r.e2e_ms?.p50).padStart(10)}${fmt(r.e2e_ms?.p95).padStart(10)}  ${errorsText(r)}`,
      );
    }
  }
  return lines.join('\n');
}
