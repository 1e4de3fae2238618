/**
 * /openapi.json is generated from the validation schemas and covers every
 * route the router serves; /docs serves Swagger UI from local assets.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Engine } from '../src/engine/index.ts';
import { createApp } from '../src/http/app.ts';
import { API_OPERATIONS } from '../src/http/api-spec.ts';
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

  it('serves Swagger UI from local files', async () => {
    const page = await fetch(`${base}/docs`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /swagger-ui-bundle\.js/);
    const js = await fetch(`${base}/docs/assets/swagger-ui-bundle.js`);
    assert.equal(js.status, 200);
    assert.ok((await js.arrayBuffer()).byteLength > 100_000);
  });
});
