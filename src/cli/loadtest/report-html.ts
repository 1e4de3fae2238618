/**
 * The HTML report: one self-contained page (no network at view time) with a
 * table per scenario, histograms of E2E and TTFT latency and a
 * throughput-over-time chart. Chart.js's UMD build from npm is inlined.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { jsonReport, PeerRun } from './report-json.ts';
import type { ScenarioResult } from './run.ts';
import { histogram } from './stats.ts';

let chartJs: string | undefined;

/** Chart.js's UMD bundle, read once from node_modules (the package does not export that path, so it is found beside its main file). */
function chartBundle(): string {
  chartJs ??= readFileSync(path.join(path.dirname(fileURLToPath(import.meta.resolve('chart.js'))), 'chart.umd.min.js'), 'utf8');
  return chartJs;
}

/** Text safe inside a <script> element: no `</script`, no `<!--`. */
function scriptSafe(s: string): string {
  return s.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Page data per scenario: histograms from the raw samples. */
function chartData(r: ScenarioResult) {
  const ok = r.samples.filter((s) => s.error === null);
  return {
    scenario: r.scenario,
    e2e: histogram(ok.map((s) => s.e2eMs)),
    ttft: histogram(ok.filter((s) => s.ttftMs !== null).map((s) => s.ttftMs!)),
    timeline: r.timeline,
  };
}

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:1px solid #ccc}table{border-collapse:collapse;margin:.5em 0}
td,th{padding:.2em .7em;text-align:right;border-bottom:1px solid #eee}th:first-child,td:first-child{text-align:left}
.charts{display:grid;grid-template-columns:1fr 1fr 1fr;gap:1em}.charts div{height:220px}code{background:#f4f4f4;padding:0 .2em}`;

const PAGE_SCRIPT = `
const report = JSON.parse(document.getElementById('report-data').textContent);
const charts = JSON.parse(document.getElementById('chart-data').textContent);
function bars(id, h, label) {
  if (!h) return;
  const labels = h.counts.map((_, i) => Math.round(h.edges[i]) + '–' + Math.round(h.edges[i + 1]));
  new Chart(document.getElementById(id), { type: 'bar', data: { labels, datasets: [{ label, data: h.counts, backgroundColor: '#4a7ebb' }] },
    options: { animation: false, maintainAspectRatio: false, plugins: { legend: { display: true } }, scales: { x: { title: { display: true, text: 'ms' } }, y: { title: { display: true, text: 'requests' } } } } });
}
function line(id, t) {
  new Chart(document.getElementById(id), { type: 'line', data: { labels: t.map((p) => p.t_s),
    datasets: [{ label: 'completed/s', data: t.map((p) => p.completed_per_s), borderColor: '#4a7ebb', yAxisID: 'y' },
               { label: 'errors/s', data: t.map((p) => p.errors_per_s), borderColor: '#c0392b', yAxisID: 'y' },
               { label: 'output tokens/s', data: t.map((p) => p.output_tokens_per_s), borderColor: '#27ae60', yAxisID: 'y1' }] },
    options: { animation: false, maintainAspectRatio: false, scales: { x: { title: { display: true, text: 's' } }, y: { position: 'left', beginAtZero: true }, y1: { position: 'right', beginAtZero: true, grid: { drawOnChartArea: false } } } } });
}
charts.forEach((c, i) => { bars('e2e-' + i, c.e2e, 'e2e ms'); bars('ttft-' + i, c.ttft, 'ttft ms'); line('tl-' + i, c.timeline); });
`;

function pct(p: { p50: number; p95: number; p99: number; max: number } | null): string {
  return p ? [p.p50, p.p95, p.p99, p.max].map((x) => `<td>${x.toFixed(1)}</td>`).join('') : '<td colspan="4">—</td>';
}

function soakHtml(s: ScenarioResult['soak']): string {
  if (!s) return '';
  const mb = (b: number | null) => (b === null ? '—' : (b / 2 ** 20).toFixed(1));
  const ms = (x: number | null) => (x === null ? '—' : x.toFixed(1));
  return `<p>Server RSS ${mb(s.rss_start_bytes)} → ${mb(s.rss_end_bytes)} MiB; client p50 E2E ${ms(s.client_e2e_p50_first_fifth_ms)} → ${ms(s.client_e2e_p50_last_fifth_ms)} ms (first and last fifth); server mean E2E ${ms(s.server_e2e_mean_first_half_ms)} → ${ms(s.server_e2e_mean_second_half_ms)} ms (first and second half, from /metrics).</p>`;
}

function section(r: ReturnType<typeof jsonReport>['scenarios'][number], i: number, server = ''): string {
  const errs = Object.entries(r.errors).map(([k, n]) => `${escapeHtml(k)}×${n}`).join(' ') || 'none';
  const phases =
    r.phases.length > 1
      ? `<table><tr><th>phase</th><th>requests</th><th>ok</th><th>e2e p50</th><th>ttft p50</th><th>cache hit rate</th></tr>${r.phases
          .map(
            (p) =>
              `<tr><td>${escapeHtml(p.name)}</td><td>${p.requests}</td><td>${p.successes}</td><td>${p.e2e_ms?.p50.toFixed(1) ?? '—'}</td><td>${p.ttft_ms?.p50.toFixed(1) ?? '—'}</td><td>${p.cache ? `${(p.cache.hit_rate * 100).toFixed(0)}%` : '—'}</td></tr>`,
          )
          .join('')}</table>`
      : '';
  return `<h2>${escapeHtml(r.scenario)}${server ? ` <small>${escapeHtml(server)}</small>` : ''}</h2><p>${escapeHtml(r.description)}</p>
<p>${r.requests} requests, ${r.successes} ok, in ${r.duration_s.toFixed(1)} s: <b>${r.rps.toFixed(2)} req/s</b>, <b>${r.output_tokens_per_s.toFixed(1)} output tokens/s</b>; errors: ${errs}${
    r.cache ? `; cache hit rate ${(r.cache.hit_rate * 100).toFixed(0)}%` : ''
  }${r.goodput ? `; goodput ${r.goodput.requests_per_s.toFixed(2)} req/s (${(r.goodput.fraction * 100).toFixed(0)}%)` : ''}</p>
<table><tr><th>ms</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr>
<tr><td>TTFT</td>${pct(r.ttft_ms)}</tr><tr><td>TPOT</td>${pct(r.tpot_ms)}</tr><tr><td>ITL</td>${pct(r.itl_ms)}</tr><tr><td>E2E</td>${pct(r.e2e_ms)}</tr></table>
${phases}${soakHtml(r.soak)}<div class="charts"><div><canvas id="e2e-${i}"></canvas></div><div><canvas id="ttft-${i}"></canvas></div><div><canvas id="tl-${i}"></canvas></div></div>`;
}

/** The page for a finished run (with its peers' results after its own). */
export function htmlReport(report: ReturnType<typeof jsonReport>, results: readonly ScenarioResult[], peers: readonly PeerRun[] = []): string {
  const peerSections: string[] = [];
  let at = results.length;
  for (const [k, p] of peers.entries()) {
    for (const r of report.peers?.[k]?.scenarios ?? []) peerSections.push(section(r, at++, `peer ${p.url}`));
  }
  const allResults = [...results, ...peers.flatMap((p) => p.results)];
  const card = report.scorecard
    ? `<h2>Scorecard</h2><p>At ${report.scorecard.price_per_hour} per hour; configured prices (${report.scorecard.configured.source}): input ${report.scorecard.configured.input_per_1k ?? '—'}, output ${report.scorecard.configured.output_per_1k ?? '—'} per 1k tokens.</p>
<table><tr><th>scenario</th><th>answers/s</th><th>output tokens/s</th><th>cost per 1k output tokens</th><th>cost per answer</th><th>configured cost per answer</th></tr>${report.scorecard.rows
        .map(
          (r) =>
            `<tr><td>${escapeHtml(r.scenario)}</td><td>${r.answers_per_s}</td><td>${r.output_tokens_per_s}</td><td>${r.cost_per_1k_output_tokens ?? '—'}</td><td>${r.cost_per_answer ?? '—'}</td><td>${r.configured_cost_per_answer ?? '—'}</td></tr>`,
        )
        .join('')}</table>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>candela loadtest — ${escapeHtml(report.url)}</title>
<style>${STYLE}</style>
<script>${scriptSafe(chartBundle())}</script></head>
<body><h1>candela loadtest</h1>
<p>${escapeHtml(report.url)} (${report.target}${report.model ? `, model ${escapeHtml(report.model)}` : ''}), started ${escapeHtml(report.started_at)}, scale ${report.scale}.</p>
${report.scenarios.map((r, i) => section(r, i, peers.length ? report.url : '')).join('\n')}
${peerSections.join('\n')}
${card}
<script type="application/json" id="report-data">${scriptSafe(JSON.stringify(report))}</script>
<script type="application/json" id="chart-data">${scriptSafe(JSON.stringify(allResults.map(chartData)))}</script>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}
