/**
 * The observability deployment against real components: a real Prometheus
 * (Debian's package) with the project's scrape config and alert rules scrapes
 * a real Candela on tiny generated models while a short mixed traffic script
 * runs (RAG queries, streams, batch, cache hits, generation, OpenAI route,
 * embeddings, rerank, a 401, 404 and 422, a 503 from the cost breaker, a 429
 * from a rate limit). Then every PromQL expression of every Grafana dashboard
 * (template variables substituted) must return data, every template variable
 * must find values, and every alert rule must evaluate without error.
 * A renamed metric breaks this test.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../src/bootstrap.ts';
import { FileKeyStore } from '../src/services/api-keys.ts';
import { ROOT, tempDir } from './helpers/paths.ts';
import { readJson, startPrometheus, type TestPrometheus } from './helpers/prometheus.ts';
import { startTinyServer, tinyRagModels } from './helpers/tiny-server.ts';

const DASHBOARD_DIR = path.join(ROOT, 'grafana', 'dashboards');
/** Requests per minute per API key; the burst key goes past it, the traffic key stays under. */
const KEY_RPM = 40;
/**
 * Metrics that exist only on a GPU host: NVIDIA's DCGM exporter and Candela's
 * device memory gauges (declared in /metrics, without samples on CPU). Their
 * queries must still parse; they may be empty here.
 */
const GPU_ONLY = /\b(DCGM_FI_\w+|candela_device_memory_\w+)/;

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string; refId: string }[];
  panels?: Panel[];
}
interface Dashboard {
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown }[] };
}

/** Grafana's variables as a test of "all values" sees them. */
function substitute(expr: string): string {
  const out = expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '15s')
    .replaceAll('$job', 'candela')
    .replaceAll('$instance', '.*')
    .replaceAll('$model', '.*');
  assert.doesNotMatch(out, /\$/, `unsubstituted variable in ${expr}`);
  return out;
}

function dashboards(): { file: string; dash: Dashboard }[] {
  const files = readdirSync(DASHBOARD_DIR).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 2, 'the overview and RAG dashboards');
  return files.map((file) => ({ file, dash: readJson<Dashboard>(path.join(DASHBOARD_DIR, file)) }));
}

function panelsOf(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...panelsOf(p.panels ?? [])]);
}

let server: RunningServer;
let prom: TestPrometheus;
let metricsText = '';
const statuses: number[] = [];

async function call(method: string, route: string, key: string | undefined, body?: unknown): Promise<Response> {
  const res = await fetch(`${server.url}${route}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  await res.arrayBuffer(); // read streams to the end
  statuses.push(res.status);
  return res;
}

/** The mixed traffic: every route family and every outcome a dashboard plots. */
async function traffic(key: string, burstKey: string): Promise<void> {
  const expect = async (status: number, p: Promise<Response>, what: string) => assert.equal((await p).status, status, what);
  const docs = ['The cat sat on the mat by the door.', 'Paris is the capital of France.', 'Candela serves models on CPU and CUDA.'];
  await expect(201, call('POST', '/v1/documents', key, { documents: docs.map((text, i) => ({ id: `d${i}`, text })) }), 'ingest');
  const q = { max_tokens: 6, top_k_retrieve: 3, top_k_rerank: 2 };
  await expect(200, call('POST', '/v1/query', key, { ...q, query: 'where did the cat sit' }), 'query (miss)');
  await expect(200, call('POST', '/v1/query', key, { ...q, query: 'where did the cat sit' }), 'query (exact hit)');
  await expect(200, call('POST', '/v1/query', key, { ...q, query: 'what is the capital of France' }), 'second query');
  await expect(200, call('POST', '/v1/query/stream', key, { ...q, query: 'which devices does Candela use' }), 'query stream');
  await expect(200, call('POST', '/v1/batch', key, { queries: [{ ...q, query: 'tell me about the mat' }, { ...q, query: 'where did the cat sit' }] }), 'batch');
  await expect(200, call('POST', '/v1/generate', key, { prompt: 'hello', max_tokens: 6, ignore_eos: true }), 'generate');
  await expect(200, call('POST', '/v1/generate/stream', key, { prompt: 'once upon a time', max_tokens: 6, ignore_eos: true }), 'generate stream');
  await expect(200, call('POST', '/v1/chat/completions', key, { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 6 }), 'chat');
  await expect(200, call('POST', '/v1/embeddings', key, { input: ['first', 'second'] }), 'embeddings');
  await expect(200, call('POST', '/v1/rerank', key, { query: 'cat', documents: ['a cat', 'a dog'] }), 'rerank');
  await expect(200, call('GET', '/v1/models', key), 'models');
  await expect(401, call('GET', '/v1/models', undefined), 'no key');
  await expect(404, call('GET', '/v1/models/nope', key), 'unknown model');
  await expect(422, call('POST', '/v1/query', key, { query: '' }), 'invalid query');
  // A worst case over the whole budget: the breaker refuses it and opens.
  await expect(503, call('POST', '/v1/generate', key, { prompt: 'a long story', max_tokens: 900 }), 'budget spent');
  let limited = false;
  for (let i = 0; i <= KEY_RPM + 1 && !limited; i++) limited = (await call('GET', '/v1/models', burstKey)).status === 429;
  assert.ok(limited, 'the burst key was never rate limited');
}

before(async () => {
  const dir = tempDir();
  const dataDir = tempDir('candela-data-');
  const keysFile = path.join(dataDir, 'keys.json');
  const keys = new FileKeyStore(keysFile);
  const key = (await keys.create({ name: 'app', scopes: ['read', 'write'] })).key;
  const burstKey = (await keys.create({ name: 'burst', scopes: ['read'] })).key;
  server = await startTinyServer(
    tinyRagModels(dir, 'bert-mean'),
    // 1 per 1,000 completion tokens against a budget of 0.5: the traffic spends a few hundredths.
    { dataDir, keysFile, authEnabled: true, rateLimitKeyRpm: KEY_RPM, budget: 0.5, priceInputPer1k: 0, priceOutputPer1k: 1 },
  );
  prom = await startPrometheus(new URL(server.url).host);
  await prom.waitForScrapes(1);
  await traffic(key, burstKey);
  metricsText = await (await fetch(`${server.url}/metrics`)).text();
  // Two scrapes after the last request: every series has two samples for rate().
  await prom.waitForScrapes(2);
});

after(async () => {
  await prom?.stop();
  await server?.close();
});

describe('Prometheus scraping Candela', () => {
  it('scrapes the target through the project config', async () => {
    const up = await prom.query('up{job="candela"}');
    assert.equal(up.length, 1);
    assert.equal(up[0]!.value[1], '1');
  });

  it('the traffic produced every status class the dashboards split on', () => {
    for (const s of [200, 201, 401, 404, 422, 429, 503]) assert.ok(statuses.includes(s), `no ${s} in the traffic`);
  });

  it('every dashboard query returns data (GPU-only metrics: valid, and declared by Candela where they are its own)', async () => {
    const empty: string[] = [];
    let checked = 0;
    let gpuOnly = 0;
    for (const { file, dash } of dashboards()) {
      for (const panel of panelsOf(dash.panels)) {
        for (const t of panel.targets ?? []) {
          const expr = substitute(t.expr);
          const result = await prom.query(expr); // throws on invalid PromQL
          checked++;
          const gpu = GPU_ONLY.exec(expr);
          if (gpu) {
            gpuOnly++;
            if (gpu[1]!.startsWith('candela_')) assert.match(metricsText, new RegExp(`# TYPE ${gpu[1]} `), `${gpu[1]} is not declared in /metrics`);
            continue;
          }
          if (result.length === 0) empty.push(`${file} / ${panel.title} / ${t.refId}: ${expr}`);
        }
      }
    }
    assert.deepEqual(empty, [], `queries without data:\n${empty.join('\n')}`);
    assert.ok(checked >= 50, `only ${checked} queries`);
    assert.ok(gpuOnly <= 8, `${gpuOnly} GPU-only queries: the exemption is meant for the GPU row only`);
  });

  it('every dashboard template variable finds values', async () => {
    for (const { file, dash } of dashboards()) {
      for (const v of dash.templating.list.filter((x) => x.type === 'query')) {
        const q = typeof v.query === 'string' ? v.query : (v.query as { query: string }).query;
        const m = /^label_values\((.+),\s*(\w+)\)$/.exec(q);
        assert.ok(m, `${file} $${v.name}: only label_values(selector, label) is supported here: ${q}`);
        const series = await prom.series(substitute(m[1]!));
        assert.ok(series.some((s) => s[m[2]!] !== undefined), `${file} $${v.name} finds no values: ${q}`);
      }
    }
  });

  it('every alert rule loads and evaluates without error on live data', async () => {
    const res = await fetch(`${prom.url}/api/v1/rules`);
    const body = (await res.json()) as { data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] } };
    const rules = body.data.groups.flatMap((g) => g.rules);
    assert.ok(rules.length >= 12, `${rules.length} rules`);
    for (const r of rules) assert.equal(r.health, 'ok', `${r.name}: ${r.lastError ?? r.health}`);
  });
});
