/**
 * A throwaway Prometheus (Debian's `prometheus` package) for tests: the
 * project's own scrape config pointed at a given target and scraping every
 * second, on a free port of 127.0.0.1, with a fresh TSDB. Killed when the
 * test process exits.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT, tempDir } from './paths.ts';
import { freePort } from './redis.ts';

export const PROMETHEUS_DIR = path.join(ROOT, 'deploy', 'prometheus');
const START_TIMEOUT_MS = 30_000;

/** One sample of an instant vector. */
export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface TestPrometheus {
  url: string;
  /** Runs an instant query; throws on a PromQL or HTTP error. */
  query(expr: string): Promise<PromSample[]>;
  /** Series matching a selector (the series API, as Grafana's label_values uses). */
  series(match: string): Promise<Record<string, string>[]>;
  /** Waits until Prometheus has scraped the target `count` more times (bounded). */
  waitForScrapes(count: number): Promise<void>;
  stop(): Promise<void>;
}

/** Whether `prometheus` can be run here. */
export function hasPrometheus(): boolean {
  const r = spawnSync('prometheus', ['--version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

/**
 * The project's prometheus.yml with the Compose target replaced by `target`
 * and the intervals shortened to one second; throws if either is not where
 * the test expects it (the file changed shape).
 */
export function testConfig(target: string): string {
  let text = readFileSync(path.join(PROMETHEUS_DIR, 'prometheus.yml'), 'utf8');
  for (const [from, to] of [
    ["'candela:8080'", `'${target}'`],
    ['scrape_interval: 15s', 'scrape_interval: 1s'],
    ['evaluation_interval: 15s', 'evaluation_interval: 1s'],
  ] as const) {
    if (!text.includes(from)) throw new Error(`deploy/prometheus/prometheus.yml no longer contains ${from}`);
    text = text.replace(from, to);
  }
  return text;
}

/** Starts Prometheus scraping `target` (host:port) with the project's config and alert rules. */
export async function startPrometheus(target: string): Promise<TestPrometheus> {
  if (!hasPrometheus()) throw new Error('prometheus is not on PATH; run `bash scripts/test.sh` (it installs Debian\'s prometheus package)');
  const dir = tempDir('candela-prom-');
  writeFileSync(path.join(dir, 'prometheus.yml'), testConfig(target));
  copyFileSync(path.join(PROMETHEUS_DIR, 'alerts.yml'), path.join(dir, 'alerts.yml'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    'prometheus',
    [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr?.on('data', (b: Buffer) => {
    log = (log + b.toString('utf8')).slice(-4000);
  });
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const api = async <T>(p: string): Promise<T> => {
    const res = await fetch(`${url}${p}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${p}: ${body.error ?? res.status}`);
    return body.data;
  };
  const scrapes = async (): Promise<number> => {
    const r = await api<{ result: PromSample[] }>(`/api/v1/query?query=${encodeURIComponent('count_over_time(up{job="candela"}[1h])')}`);
    return Number(r.result[0]?.value[1] ?? 0);
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited: ${log.trim()}`);
    const ok = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`prometheus did not get ready in ${START_TIMEOUT_MS} ms: ${log.trim()}`);
    }
    await sleep(100);
  }

  return {
    url,
    async query(expr) {
      const data = await api<{ resultType: string; result: PromSample[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
      if (data.resultType !== 'vector') throw new Error(`${expr}: expected a vector, got ${data.resultType}`);
      return data.result;
    },
    series(match) {
      return api<Record<string, string>[]>(`/api/v1/series?match[]=${encodeURIComponent(match)}`);
    },
    async waitForScrapes(count) {
      const start = await scrapes();
      const until = Date.now() + 15_000 + count * 2_000;
      while ((await scrapes()) < start + count) {
        if (Date.now() > until) throw new Error(`Prometheus did not scrape ${count} times in time: ${log.trim()}`);
        await sleep(200);
      }
    },
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5_000).then(() => child.kill('SIGKILL'))]);
    },
  };
}

/** Reads a JSON file of the repository. */
export function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}
