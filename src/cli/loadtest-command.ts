/**
 * `candela loadtest`: named scenarios against Candela or, with --openai, any
 * OpenAI-compatible server; client-measured TTFT/TPOT/ITL/E2E, a terminal
 * report with a progress line, and --json / --html reports; a scorecard with
 * --price-per-hour. The URL is loopback unless given.
 */
import { writeFileSync } from 'node:fs';
import type { Config } from '../config.ts';
import { peakUsers, type Bounds } from './loadtest/arrivals.ts';
import { createClient, type LoadClient } from './loadtest/client.ts';
import { defaultQuestions, loadQuestions } from './loadtest/questions.ts';
import { htmlReport } from './loadtest/report-html.ts';
import { jsonReport, type RunInfo } from './loadtest/report-json.ts';
import { comparisonTable, progressLine, scenarioBlock, scorecardBlock } from './loadtest/report-terminal.ts';
import { runScenario, type ScenarioResult } from './loadtest/run.ts';
import { SCENARIOS, pickScenarios, type ScenarioContext } from './loadtest/scenarios.ts';
import { pricesFromStats, scorecard, type ConfiguredPrices } from './loadtest/scorecard.ts';
import { SLO_METRICS, type Slo, type SloMetric } from './loadtest/stats.ts';
import { COMMON_OPTIONS, UsageError, num, parse } from './usage.ts';

/** A server the run loads: the one under test or an OpenAI-compatible peer. */
interface Target {
  url: string;
  kind: 'candela' | 'openai';
  client: LoadClient;
  ctx: ScenarioContext;
}

/** `--slo ttft_ms=500,e2e_ms=3000` (the `_ms` may be left out). */
export function parseSlo(specs: string[]): Slo | null {
  if (specs.length === 0) return null;
  const slo: Slo = {};
  for (const part of specs.flatMap((s) => s.split(','))) {
    const [k, v] = part.split('=', 2) as [string, string | undefined];
    const key = (k.trim().endsWith('_ms') ? k.trim() : `${k.trim()}_ms`) as SloMetric;
    if (!SLO_METRICS.includes(key) || v === undefined) {
      throw new UsageError(`--slo takes METRIC=MS pairs with METRIC one of ${SLO_METRICS.join(', ')}, got '${part}'`);
    }
    slo[key] = num('slo', v.trim(), { min: 0 })!;
  }
  return slo;
}

/** The base URL: given, or this machine's Candela on loopback. */
function baseUrl(given: string | undefined, config: Config): string {
  const raw = given ?? `http://127.0.0.1:${config.port || 8080}`;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UsageError(`--url must be an http(s) URL, got '${raw}'`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`--url must be an http(s) URL, got '${raw}'`);
  return u.toString().replace(/\/+$/, '');
}

function listText(): string {
  const w = Math.max(...SCENARIOS.map((s) => s.name.length)) + 2;
  return `${SCENARIOS.map((s) => `${s.name.padEnd(w)}${s.description}`).join('\n')}\n`;
}

/** The model an OpenAI-compatible server lists first, for servers that need one named. */
async function firstModel(client: LoadClient): Promise<string | undefined> {
  try {
    const j = JSON.parse(await client.getText('/v1/models')) as { data?: { id?: string }[] };
    return j.data?.[0]?.id;
  } catch {
    return undefined;
  }
}

async function configuredPrices(client: LoadClient, target: string, config: Config): Promise<{ prices: ConfiguredPrices; windowS: number | null }> {
  if (target === 'candela') {
    try {
      const fromServer = pricesFromStats(JSON.parse(await client.getText('/health/stats')));
      if (fromServer) return fromServer;
    } catch {
      // An older server or one behind auth: fall back to this machine's settings.
    }
  }
  return { prices: { input_per_1k: config.priceInputPer1k, output_per_1k: config.priceOutputPer1k, source: 'local-config' }, windowS: target === 'candela' ? config.budgetWindowS : null };
}

/** Calls `f` at most once per 10 s (progress in logs, where a line cannot be rewritten). */
function everyTenSeconds<T>(f: (x: T) => void): (x: T) => void {
  let last = performance.now();
  return (x) => {
    if (performance.now() - last < 10_000) return;
    last = performance.now();
    f(x);
  };
}

/** Runs `candela loadtest`; returns the exit code (1 when a scenario got no answer at all). */
export async function loadtestCommand(args: string[], config: Config): Promise<number> {
  const { values, positionals } = parse(args, {
    ...COMMON_OPTIONS,
    url: { type: 'string' },
    scenario: { type: 'string' },
    list: { type: 'boolean' },
    openai: { type: 'boolean' },
    model: { type: 'string' },
    'api-key': { type: 'string' },
    'max-tokens': { type: 'string' },
    scale: { type: 'string' },
    questions: { type: 'string' },
    slo: { type: 'string', multiple: true },
    'price-per-hour': { type: 'string' },
    json: { type: 'string' },
    html: { type: 'string' },
    'timeout-s': { type: 'string' },
    'max-duration-s': { type: 'string' },
    seed: { type: 'string' },
    'ignore-eos': { type: 'boolean' },
    quiet: { type: 'boolean' },
    peer: { type: 'string', multiple: true },
  });
  if (positionals.length) throw new UsageError(`loadtest takes no arguments, got '${positionals[0]}' (scenarios go in --scenario)`);
  if (values.list) {
    process.stdout.write(listText());
    return 0;
  }
  if (!values.scenario) throw new UsageError('loadtest needs --scenario NAME[,NAME…] or all (--list shows them)');
  const target = values.openai ? 'openai' : 'candela';
  let scenarios;
  try {
    scenarios = pickScenarios(values.scenario.split(',').map((s) => s.trim()).filter(Boolean));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (target === 'openai') {
    const named = values.scenario.split(',').includes('all');
    const unfit = scenarios.filter((s) => !s.openai);
    if (unfit.length && !named) throw new UsageError(`${unfit.map((s) => s.name).join(', ')} need Candela's own routes (not with --openai)`);
    scenarios = scenarios.filter((s) => s.openai);
  }
  const url = baseUrl(values.url, config);
  const scale = num('scale', values.scale, { min: 0.001, max: 100 }) ?? 1;
  const maxTokens = num('max-tokens', values['max-tokens'], { min: 1, max: 32_768, integer: true });
  const timeoutS = num('timeout-s', values['timeout-s'], { min: 0.1, max: 3600 }) ?? 120;
  const maxDurationS = num('max-duration-s', values['max-duration-s'], { min: 1, max: 86_400 }) ?? 3600;
  const pricePerHour = num('price-per-hour', values['price-per-hour'], { min: 0 });
  const seed = num('seed', values.seed, { min: 0, max: 2 ** 32 - 1, integer: true }) ?? 1;
  const slo = parseSlo(values.slo ?? []);
  const questions = values.questions ? loadQuestions(values.questions) : defaultQuestions();

  const ctxBase: Omit<ScenarioContext, 'model'> = { target, scale, maxTokens, questions, ignoreEos: values['ignore-eos'] ?? false, seed };
  const peak = Math.max(1, ...scenarios.flatMap((s) => s.phases({ ...ctxBase }).map((p) => peakUsers(p.arrival))));
  const connect = (u: string) => createClient({ baseUrl: u, apiKey: values['api-key'], timeoutMs: timeoutS * 1000, connections: peak + 2 });
  // The server under test first, then each OpenAI-compatible peer, taking turns scenario by scenario.
  const targets: Target[] = [{ url, kind: target, client: connect(url), ctx: { ...ctxBase } }];
  for (const p of values.peer ?? []) {
    const peerUrl = baseUrl(p, config);
    targets.push({ url: peerUrl, kind: 'openai', client: connect(peerUrl), ctx: { ...ctxBase, target: 'openai' } });
  }
  const stop = new AbortController();
  const onSigint = () => stop.abort();
  process.once('SIGINT', onSigint);
  try {
    for (const t of targets) {
      try {
        await t.client.getText(t.kind === 'openai' ? '/v1/models' : '/health');
      } catch (err) {
        throw new Error(`cannot reach ${t.url}: ${err instanceof Error ? ((err as { code?: string }).code ?? err.message) : String(err)}`);
      }
      const model = t === targets[0] ? (values.model ?? (t.kind === 'openai' ? await firstModel(t.client) : undefined)) : await firstModel(t.client);
      if (model) t.ctx.model = model;
    }
    const main = targets[0]!;
    const bounds: Bounds = { maxRequests: 1_000_000, maxDurationS, graceS: timeoutS };
    const tty = process.stderr.isTTY && !values.quiet;
    const info: RunInfo = { url, target, model: main.ctx.model ?? null, started_at: new Date().toISOString(), scale, max_tokens: maxTokens ?? null, ignore_eos: ctxBase.ignoreEos, slo, seed };
    const results = new Map<Target, ScenarioResult[]>(targets.map((t) => [t, []]));
    for (const s of scenarios) {
      for (const t of targets) {
        if (stop.signal.aborted || (t.kind === 'openai' && !s.openai)) continue;
        const label = targets.length > 1 ? ` [${t.url} ${t.kind}]` : '';
        if (!values.quiet) process.stderr.write(`${s.name}${label}: running\n`);
        const r = await runScenario(s, {
          client: t.client,
          ctx: t.ctx,
          bounds,
          slo,
          signal: stop.signal,
          onProgress: values.quiet ? undefined : tty ? (p) => process.stderr.write(`\r\x1b[K${progressLine(p)}`) : everyTenSeconds((p) => process.stderr.write(`${progressLine(p)}\n`)),
        });
        if (tty) process.stderr.write('\r\x1b[K');
        results.get(t)!.push(r);
        process.stdout.write(`${scenarioBlock(r).replace(/^(\S+)/, `$1${label}`)}\n\n`);
      }
    }
    const mine = results.get(main)!;
    const peers = targets.slice(1).map((t) => ({ url: t.url, model: t.ctx.model ?? null, results: results.get(t)! }));
    if (peers.length) process.stdout.write(`${comparisonTable(targets.map((t) => ({ server: `${t.url.replace(/^https?:\/\//, '')} ${t.kind}`, results: results.get(t)! })))}\n\n`);
    let card = null;
    if (pricePerHour !== undefined) {
      const { prices, windowS } = await configuredPrices(main.client, target, config);
      card = scorecard(mine, pricePerHour, prices, windowS);
      process.stdout.write(`${scorecardBlock(card)}\n`);
    }
    const report = jsonReport(info, mine, card, peers);
    if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
    if (values.html) writeFileSync(values.html, htmlReport(report, mine, peers));
    const failed = [...results.values()].flat().filter((r) => r.successes === 0).map((r) => r.scenario);
    if (stop.signal.aborted) {
      process.stderr.write('candela: loadtest interrupted; the reports hold what was measured\n');
      return 130;
    }
    if (failed.length) {
      process.stderr.write(`candela: no request succeeded in ${failed.join(', ')}\n`);
      return 1;
    }
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    await Promise.all(targets.map((t) => t.client.close()));
  }
}
