/** GET /openapi.json and GET /docs (Swagger UI from local assets: works offline). */
import { createRequire } from 'node:module';
import path from 'node:path';
import express, { Router } from 'express';
import { buildOpenApi, type ApiSpecOptions } from '../api-spec.ts';

const swaggerDir = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Candela API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>`;

const INIT = `window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui' });`;

/** Serves the document for a server set up as `spec` says (security schemes only when auth is on). */
export function createDocsRoutes(version: string, spec: ApiSpecOptions): Router {
  const r = Router();
  const document = buildOpenApi(version, spec);
  r.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  r.get('/docs', (_req, res) => {
    res.type('html').send(PAGE);
  });
  r.get('/docs/init.js', (_req, res) => {
    res.type('application/javascript').send(INIT);
  });
  r.use('/docs/assets', express.static(swaggerDir, { index: false }));
  return r;
}
