/**
 * /openapi.json is generated from the validation schemas and covers every
 * route the router serves; /docs serves Swagger UI from local assets.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Engine } from '../src/engine/index.ts';
import { createApp } from '../src/http/app.ts';
import { API_OPERATIONS, buildOpenApi } from '../src/http/api-spec.ts';
import { SUCCESS_SCHEMAS } from '../src/http/api-success.ts';
import { listRoutes } from '../src/http/route-list.ts';
import { Metrics } from '../src/services/metrics.ts';
import { InferenceService } from '../src/services/inference.ts';
import { ModelService } from '../src/services/model-service.ts';
import { RagService } from '../src/services/rag.ts';

const engine = new Engine();
const models = new ModelService({ engine, models: [] });
const inference = new InferenceService({ engine, models });
const app = createApp({
  models,
  inference,
  rag: new RagService({ models, inference, documents: () => undefined }),
  metrics: new Metrics(engine),
  logger: pino({ level: 'silent' }),
  bodyLimitBytes: 1 << 20,
  sseHeartbeatMs: 1000,
  version: '9.9.9',
});
let base = '';
let close: () => void = () => undefined;

before(async () => {
  await new Promise<void>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => {
      base = `http://127.0.0.1:${(s.address() as { port: number }).port}`;
      close = () => s.close();
      resolve();
    });
  });
});
after(() => close());

describe('api docs', () => {
  it('documents every route the router serves, and nothing else', () => {
    // The docs themselves and the web page (GET /) are not API operations.
    const served = listRoutes(app).filter((r) => !r.startsWith('GET /docs') && r !== 'GET /openapi.json' && r !== 'GET /');
    const documented = API_OPERATIONS.map((o) => `${o.method.toUpperCase()} ${o.path}`);
    assert.ok(served.length >= 15, `router enumeration found ${served.length} routes`);
    assert.deepEqual([...served].sort(), [...documented].sort());
  });

  it('serves an OpenAPI 3.1 document built from the zod schemas', async () => {
    const spec = (await (await fetch(`${base}/openapi.json`)).json()) as {
      openapi: string;
      info: { version: string };
      paths: Record<string, Record<string, { requestBody?: { content: { 'application/json': { schema: { properties: Record<string, { maximum?: number; minimum?: number }> } } } } }>>;
    };
    assert.equal(spec.openapi, '3.1.0');
    assert.equal(spec.info.version, '9.9.9');
    const gen = spec.paths['/v1/generate']!['post']!.requestBody!.content['application/json'].schema;
    assert.equal(gen.properties['max_tokens']?.maximum, 32768, 'limits come from the validation schema');
    assert.ok(spec.paths['/v1/models/{id}']?.['get'], 'express params become OpenAPI path params');
  });

  it('has security schemes only when auth is on, and no Authorization parameter', () => {
    type Op = { security?: unknown[]; parameters: { name: string; in: string }[]; responses: Record<string, unknown> };
    const ops = (d: Record<string, unknown>) => Object.values(d['paths'] as Record<string, Record<string, Op>>).flatMap((p) => Object.values(p));
    const off = buildOpenApi('1', { auth: false, metricsAuth: false, limited: false });
    assert.equal((off['components'] as Record<string, unknown>)['securitySchemes'], undefined);
    for (const op of ops(off)) {
      assert.equal(op.security, undefined);
      assert.ok(!op.responses['401'] && !op.responses['403'], 'no 401/403 without auth');
      assert.ok(!op.parameters.some((p) => p.name.toLowerCase() === 'authorization'));
    }
    const on = buildOpenApi('1', { auth: true, metricsAuth: false, limited: false });
    const schemes = (on['components'] as { securitySchemes: Record<string, { type: string; scheme?: string; name?: string }> }).securitySchemes;
    assert.equal(schemes['bearer']?.type, 'http');
    assert.equal(schemes['bearer']?.scheme, 'bearer');
    assert.equal(schemes['apiKey']?.type, 'apiKey');
    assert.equal(schemes['apiKey']?.name, 'X-API-Key');
    const paths = on['paths'] as Record<string, Record<string, Op>>;
    assert.deepEqual(paths['/v1/keys']!['post']!.security, [{ bearer: ['admin'] }, { apiKey: ['admin'] }]);
    assert.equal(paths['/health']!['get']!.security, undefined, 'probes stay open');
    assert.equal(paths['/metrics']!['get']!.security, undefined, 'metrics open unless metrics auth');
    assert.ok(paths['/v1/generate']!['post']!.responses['401'] && paths['/v1/generate']!['post']!.responses['403']);
    const metricsOn = buildOpenApi('1', { auth: true, metricsAuth: true, limited: false })['paths'] as Record<string, Record<string, Op>>;
    assert.deepEqual(metricsOn['/metrics']!['get']!.security, [{ bearer: ['read'] }, { apiKey: ['read'] }]);
  });

  it('documents statuses, content types, oneOf and additionalProperties as the server behaves', () => {
    const doc = buildOpenApi('1', { auth: false, metricsAuth: false, limited: true });
    type Res = { content?: Record<string, { schema?: Record<string, unknown> }>; headers?: Record<string, unknown> };
    type Op = { responses: Record<string, Res>; requestBody?: { content: Record<string, { schema: Record<string, unknown> }> } };
    const paths = doc['paths'] as Record<string, Record<string, Op>>;
    const op = (p: string, m: string) => paths[p]![m]!;
    assert.deepEqual(Object.keys(op('/metrics', 'get').responses['200']!.content!), ['text/plain']);
    assert.deepEqual(Object.keys(op('/v1/generate/stream', 'post').responses['200']!.content!), ['text/event-stream']);
    assert.deepEqual(Object.keys(op('/v1/chat/completions', 'post').responses['200']!.content!).sort(), ['application/json', 'text/event-stream']);
    assert.ok(op('/v1/documents', 'post').responses['201'] && op('/v1/documents', 'post').responses['409'] && !op('/v1/documents', 'post').responses['200']);
    assert.ok(op('/v1/keys', 'post').responses['201']);
    for (const s of ['400', '408', '413', '415', '422', '429']) assert.ok(op('/v1/embed', 'post').responses[s], `POST /v1/embed documents ${s}`);
    assert.ok(op('/v1/generate', 'post').responses['429']!.headers!['Retry-After'], '429 carries Retry-After');
    assert.deepEqual(op('/v1/generate', 'post').requestBody!.content['application/json']!.schema['oneOf'], [{ required: ['prompt'] }, { required: ['messages'] }]);
    assert.ok(op('/v1/documents', 'post').requestBody!.content['multipart/form-data']);
    assert.equal(op('/health', 'get').responses['429'], undefined, 'probes are not rate limited');
    // Every object in every request body accepts unknown properties, as the validator does.
    const objects: Record<string, unknown>[] = [];
    const walk = (n: unknown): void => {
      if (Array.isArray(n)) n.forEach(walk);
      else if (n && typeof n === 'object') {
        if ((n as Record<string, unknown>)['type'] === 'object') objects.push(n as Record<string, unknown>);
        Object.values(n).forEach(walk);
      }
    };
    for (const p of Object.values(paths)) for (const o of Object.values(p)) walk(o.requestBody?.content['application/json']?.schema);
    assert.ok(objects.length > 20);
    for (const o of objects) assert.equal(o['additionalProperties'], true);
  });

  it('has a success schema for every operation that answers JSON, and none for others', () => {
    const json = API_OPERATIONS.filter((o) => (o.success ?? 'json') === 'json' || o.success === 'json-or-sse').map((o) => `${o.method.toUpperCase()} ${o.path}`);
    assert.deepEqual(Object.keys(SUCCESS_SCHEMAS).sort(), json.sort());
  });

  it('answers a path segment that is not valid percent-encoding with 400, as documented', async () => {
    for (const path of ['/v1/models/%ZZ', '/v1/documents/%E0%A4%A']) {
      const r = await fetch(`${base}${path}`);
      assert.equal(r.status, 400, path);
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'bad_request');
    }
  });

  it('serves Swagger UI from local files', async () => {
    const page = await fetch(`${base}/docs`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /swagger-ui-bundle\.js/);
    const js = await fetch(`${base}/docs/assets/swagger-ui-bundle.js`);
    assert.equal(js.status, 200);
    assert.ok((await js.arrayBuffer()).byteLength > 100_000);
  });
});
