/**
 * The express application: the middleware chain and the route modules.
 *
 *   request id → metrics → access log → JSON body (415/413/400) → routes → 404 → errors
 *
 * Handlers throw {@link HttpError}s or engine errors; the one error handler
 * here turns everything into an OpenAI-shaped body with the right status.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { DocumentService } from '../services/documents.ts';
import type { Metrics } from '../services/metrics.ts';
import { RagService } from '../services/rag.ts';
import type { ModelService } from '../services/model-service.ts';
import { HttpError, toHttpError } from './errors.ts';
import { createHttpMetrics, routeTemplate } from './middleware/http-metrics.ts';
import { createJsonBody } from './middleware/json-body.ts';
import { createRequestId, requestIdOf } from './middleware/request-id.ts';
import { createDocsRoutes } from './routes/docs.ts';
import { createDocumentRoutes } from './routes/documents.ts';
import { createEmbeddingRoutes } from './routes/embeddings.ts';
import { createGenerateRoutes } from './routes/generate.ts';
import { createHealthRoutes } from './routes/health.ts';
import { createMetricsRoutes } from './routes/metrics.ts';
import { createModelRoutes } from './routes/models.ts';
import { createOpenAiRoutes } from './routes/openai.ts';
import { createQueryRoutes } from './routes/query.ts';
import { createRerankRoutes } from './routes/rerank.ts';
import { createTokenizeRoutes } from './routes/tokenize.ts';

/** Everything the app needs, passed in explicitly. */
export interface AppOptions {
  models: ModelService;
  metrics: Metrics;
  /** The document service once its embedder is ready (undefined: 503 on document routes). */
  documents?: () => DocumentService | undefined;
  logger: Logger;
  bodyLimitBytes: number;
  sseHeartbeatMs: number;
  startedAt?: number;
  /** Server version for the OpenAPI document. */
  version?: string;
  /** Other parts readiness waits for (see the health routes). */
  components?: () => Record<string, string>;
  settings?: Record<string, unknown>;
}

/** Builds the express app. */
export function createApp(options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(createRequestId());
  app.use(createHttpMetrics(options.metrics));
  app.use(
    pinoHttp({
      logger: options.logger,
      genReqId: (_req, res) => requestIdOf(res as unknown as Response),
      customProps: (req) => ({ route: routeTemplate(req as Request) }),
      // Probes would drown the log.
      autoLogging: { ignore: (req) => /^\/(health|metrics|docs)/.test(req.url ?? '') },
    }),
  );
  app.use(createJsonBody({ limit: options.bodyLimitBytes, multipart: (req) => req.method === 'POST' && req.path === '/v1/documents' }));

  app.use(createMetricsRoutes(options.metrics));
  app.use(createDocsRoutes(options.version ?? '0.0.0'));
  app.use(createHealthRoutes({ models: options.models, startedAt: options.startedAt ?? Date.now(), settings: options.settings ?? {}, components: options.components }));
  app.use(createModelRoutes(options.models));
  app.use(createTokenizeRoutes(options.models));
  app.use(createEmbeddingRoutes(options.models));
  app.use(createRerankRoutes(options.models));
  const documents = options.documents ?? (() => undefined);
  app.use(createDocumentRoutes(documents, { uploadLimitBytes: options.bodyLimitBytes }));
  const rag = new RagService({ models: options.models, documents, onStages: (r, k) => options.metrics.observeRag(r, k) });
  app.use(createQueryRoutes(rag, { heartbeatMs: options.sseHeartbeatMs }));
  app.use(createGenerateRoutes(options.models, { heartbeatMs: options.sseHeartbeatMs }));
  app.use(createOpenAiRoutes(options.models, { heartbeatMs: options.sseHeartbeatMs }));

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new HttpError(404, 'not_found', `no route for ${req.method} ${req.path}`));
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = toHttpError(err);
    if (e.status >= 500) req.log?.error({ err, requestId: requestIdOf(res) }, 'request failed');
    if (res.headersSent) {
      res.end();
      return;
    }
    if (e.retryAfter !== undefined) res.setHeader('Retry-After', String(e.retryAfter));
    res.status(e.status).json({ ...e.toJSON(), request_id: requestIdOf(res) });
  });
  return app;
}
