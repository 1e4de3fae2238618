/**
 * The express application: the middleware chain and the route modules.
 *
 *   request id → metrics → access log → body-read timeout (408) → auth (401/403)
 *   → per-client concurrency (429) → rate limit (429) → JSON body (415/413/400)
 *   → routes → 405 (known path, other method) / 404 → errors
 *
 * Handlers throw {@link HttpError}s or engine errors; the one error handler
 * here turns everything into an OpenAI-shaped body with the right status.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { KeyStore } from '../services/api-keys.ts';
import type { SemanticCache } from '../services/cache/semantic-cache.ts';
import type { DocumentService } from '../services/documents.ts';
import type { RateLimits } from '../services/rate-limits.ts';
import type { Metrics } from '../services/metrics.ts';
import type { RagService } from '../services/rag.ts';
import type { InferenceService } from '../services/inference.ts';
import { Retriever } from '../services/retrieval/retriever.ts';
import type { ModelService } from '../services/model-service.ts';
import { HttpError, toHttpError } from './errors.ts';
import { createHttpMetrics, routeTemplate } from './middleware/http-metrics.ts';
import { createJsonBody } from './middleware/json-body.ts';
import { createAuth } from './middleware/auth.ts';
import { createRateLimit } from './middleware/rate-limit.ts';
import { createRequestId, requestIdOf } from './middleware/request-id.ts';
import { createAdminRoutes } from './routes/admin.ts';
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
import { createSearchRoutes } from './routes/search.ts';
import { createTokenizeRoutes } from './routes/tokenize.ts';
import { createWebRoutes } from './routes/web.ts';
import { createBodyTimeout } from './wire/body-timeout.ts';
import { createClientConcurrency } from './wire/client-concurrency.ts';
import { allowedMethods } from './wire/method-not-allowed.ts';

/** Everything the app needs, passed in explicitly. */
export interface AppOptions {
  /** Model lifecycle: registry, defaults, load and unload. */
  models: ModelService;
  /** The admission path every model call goes through. */
  inference: InferenceService;
  /** The RAG pipeline behind the query routes. */
  rag: RagService;
  /** The retrieval the RAG pipeline uses, for POST /v1/search (default: one built from models, inference and documents). */
  retriever?: Retriever;
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
  /** Semantic cache for RAG answers (undefined: off). */
  cache?: SemanticCache | undefined;
  /** API keys: `keys` is the store (admin routes); `authEnabled` makes every non-probe route need one. */
  keys?: KeyStore | undefined;
  authEnabled?: boolean;
  metricsAuth?: boolean;
  limits?: RateLimits | undefined;
  /** Express `trust proxy` (how the client address is found behind a proxy). */
  trustProxy?: boolean | number | string | string[];
  /** Cache and breaker figures for /health/stats. */
  guards?: () => Promise<Record<string, unknown>>;
  /** This replica's name, sent on every response as `X-Replica-ID`. */
  replicaId?: string;
  /** Milliseconds a request body may take to arrive after its headers (408 past it; default 30 s). */
  bodyTimeoutMs?: number;
  /** Requests one client (API key or address) may have in flight (0 or absent: no cap). */
  maxRequestsPerClient?: number;
}

/** `CANDELA_TRUST_PROXY` as express takes it: true/false, a hop count, or addresses. */
export function parseTrustProxy(v: string): boolean | number | string {
  if (v === 'true' || v === 'false') return v === 'true';
  return /^\d+$/.test(v) ? Number(v) : v;
}

const CREDENTIAL_HEADERS = ['authorization', 'x-api-key', 'cookie'];

/** The access log's request record without credentials. */
export function redactCredentials<T extends { headers?: Record<string, unknown> }>(req: T): T {
  if (!req.headers) return req;
  const headers = { ...req.headers };
  for (const h of CREDENTIAL_HEADERS) if (h in headers) headers[h] = '[redacted]';
  return { ...req, headers };
}

/** Builds the express app from ready services (the composition root, src/bootstrap.ts, makes them). */
export function createApp(options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', options.trustProxy ?? false);
  app.use(createRequestId({ replicaId: options.replicaId }));
  app.use(createHttpMetrics(options.metrics));
  app.use(
    pinoHttp({
      logger: options.logger,
      genReqId: (_req, res) => requestIdOf(res as unknown as Response),
      customProps: (req) => ({ route: routeTemplate(req as Request) }),
      // API keys never reach the log.
      serializers: { req: redactCredentials },
      // Probes and the web page's static files would drown the log.
      autoLogging: { ignore: (req) => /^\/(health|metrics|docs|ui\/)/.test(req.url ?? '') },
    }),
  );
  app.use(createBodyTimeout({ timeoutMs: options.bodyTimeoutMs ?? 30_000 }));
  app.use(
    createAuth({
      keys: options.authEnabled ? options.keys : undefined,
      metricsAuth: options.metricsAuth ?? false,
      onFailure: (reason) => options.metrics.authFailure(reason),
    }),
  );
  app.use(createClientConcurrency({ maxPerClient: options.maxRequestsPerClient ?? 0, onLimited: () => options.metrics.rateLimited('client_concurrency') }));
  if (options.limits?.enabled) app.use(createRateLimit(options.limits));
  app.use(createJsonBody({ limit: options.bodyLimitBytes, multipart: (req) => req.method === 'POST' && req.path === '/v1/documents' }));

  app.use(createMetricsRoutes(options.metrics));
  app.use(
    createDocsRoutes(options.version ?? '0.0.0', {
      auth: Boolean(options.authEnabled && options.keys),
      metricsAuth: options.metricsAuth ?? false,
      limited: Boolean(options.limits?.enabled) || (options.maxRequestsPerClient ?? 0) > 0,
    }),
  );
  app.use(createWebRoutes());
  app.use(createHealthRoutes({ models: options.models, startedAt: options.startedAt ?? Date.now(), settings: options.settings ?? {}, components: options.components, guards: options.guards }));
  app.use(createModelRoutes(options.models));
  app.use(createTokenizeRoutes(options.models, options.inference));
  app.use(createEmbeddingRoutes(options.models, options.inference));
  app.use(createRerankRoutes(options.models, options.inference));
  const documents = options.documents ?? (() => undefined);
  app.use(createDocumentRoutes(documents, { uploadLimitBytes: options.bodyLimitBytes }));
  app.use(createSearchRoutes(options.retriever ?? new Retriever({ models: options.models, inference: options.inference, documents })));
  app.use(createQueryRoutes(options.rag, { heartbeatMs: options.sseHeartbeatMs }));
  app.use(createGenerateRoutes(options.models, options.inference, { heartbeatMs: options.sseHeartbeatMs }));
  app.use(createOpenAiRoutes(options.models, options.inference, { heartbeatMs: options.sseHeartbeatMs }));
  app.use(createAdminRoutes({ keys: options.keys, cache: options.cache }));

  app.use((req: Request, res: Response, next: NextFunction) => {
    const allow = allowedMethods(app, req.path);
    if (allow.length > 0) {
      res.setHeader('Allow', allow.join(', '));
      next(new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on ${req.path}; allowed: ${allow.join(', ')}`));
      return;
    }
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
