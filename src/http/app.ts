/**
 * The express application: the middleware chain and the route modules.
 *
 *   request id → access log → JSON body (415/413/400) → routes → 404 → errors
 *
 * Handlers throw {@link HttpError}s or engine errors; the one error handler
 * here turns everything into an OpenAI-shaped body with the right status.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { ModelService } from '../services/model-service.ts';
import { HttpError, toHttpError } from './errors.ts';
import { createJsonBody } from './middleware/json-body.ts';
import { createRequestId, requestIdOf } from './middleware/request-id.ts';
import { createEmbeddingRoutes } from './routes/embeddings.ts';
import { createGenerateRoutes } from './routes/generate.ts';
import { createHealthRoutes } from './routes/health.ts';
import { createModelRoutes } from './routes/models.ts';
import { createTokenizeRoutes } from './routes/tokenize.ts';

/** Everything the app needs, passed in explicitly. */
export interface AppOptions {
  models: ModelService;
  logger: Logger;
  bodyLimitBytes: number;
  sseHeartbeatMs: number;
  startedAt?: number;
  settings?: Record<string, unknown>;
}

/** Builds the express app. */
export function createApp(options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(createRequestId());
  app.use(
    pinoHttp({
      logger: options.logger,
      genReqId: (_req, res) => requestIdOf(res as unknown as Response),
      customProps: (req) => ({ route: (req as Request).route ? routeTemplate(req as Request) : undefined }),
      // Probes would drown the log.
      autoLogging: { ignore: (req) => (req.url ?? '').startsWith('/health') },
    }),
  );
  app.use(createJsonBody({ limit: options.bodyLimitBytes }));

  app.use(createHealthRoutes({ models: options.models, startedAt: options.startedAt ?? Date.now(), settings: options.settings ?? {} }));
  app.use(createModelRoutes(options.models));
  app.use(createTokenizeRoutes(options.models));
  app.use(createEmbeddingRoutes(options.models));
  app.use(createGenerateRoutes(options.models, { heartbeatMs: options.sseHeartbeatMs }));

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

/** The route template of a matched request (e.g. `/v1/models/:id`). */
export function routeTemplate(req: Request): string {
  const route = req.route as { path?: string } | undefined;
  return `${req.baseUrl}${route?.path ?? ''}`;
}
