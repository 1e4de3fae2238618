/**
 * Starts Candela's HTTP server: engine, models (loaded in the background so
 * liveness answers at once and readiness turns green when they are in), the
 * app, and a graceful shutdown (stop accepting, let in-flight requests and
 * streams finish within the grace period, then close what is left).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import type { Redis } from 'ioredis';
import { PROJECT_ROOT, redactConfig, type Config } from '../config.ts';
import { Engine } from '../engine/index.ts';
import { FileKeyStore, RedisKeyStore, type KeyStore } from '../services/api-keys.ts';
import { FallbackKeyStore } from '../services/key-fallback.ts';
import { MemoryCacheStore } from '../services/cache/memory-store.ts';
import { RedisCacheStore } from '../services/cache/redis-store.ts';
import { SemanticCache } from '../services/cache/semantic-cache.ts';
import { CostBreaker } from '../services/cost/cost-breaker.ts';
import { Pricing } from '../services/cost/pricing.ts';
import { MemorySpendStore, RedisSpendStore } from '../services/cost/spend-store.ts';
import { RateLimits } from '../services/rate-limits.ts';
import { connectRedis, redactRedisUrl } from '../services/redis.ts';
import { ingestDemoCorpus } from '../services/demo-corpus.ts';
import { DocumentStore } from '../services/document-store.ts';
import { DocumentService } from '../services/documents.ts';
import { Metrics } from '../services/metrics.ts';
import { ModelService, type ModelSpec } from '../services/model-service.ts';
import { createApp } from './app.ts';
import { applyServerLimits, CONNECTIONS_CHECKING_INTERVAL_MS } from './wire/server-limits.ts';
import type { RagLayout } from '../services/rag-prompt.ts';

/** Options of {@link startServer}. */
export interface ServerOptions {
  config: Config;
  /** Models to load at start-up. */
  models: readonly ModelSpec[];
  logger?: Logger;
  /** Layout of the RAG prompt's user turn (evaluations of other layouts; default: the chosen one). */
  ragLayout?: RagLayout;
}

/** A running server. */
export interface RunningServer {
  url: string;
  /** The express app (tests enumerate its routes). */
  app: ReturnType<typeof createApp>;
  port: number;
  models: ModelService;
  /** Resolves when every configured model has settled (ready or failed). */
  loaded: Promise<void>;
  /** Graceful shutdown. */
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { config } = options;
  const logger = options.logger ?? pino({ level: config.logLevel });
  logger.info({ config: redactConfig(config) }, 'effective configuration');
  const engine = new Engine({ threads: config.threads });
  const metrics = new Metrics(engine);

  // Shared state: in this process, or in Redis when one is configured.
  const pricing = new Pricing({ inputPer1k: config.priceInputPer1k, outputPer1k: config.priceOutputPer1k }, config.prices);
  const redis: Redis | undefined = config.redisUrl ? connectRedis(config.redisUrl, logger, 'shared') : undefined;
  if (redis) logger.info({ redis: redactRedisUrl(config.redisUrl), prefix: config.redisPrefix }, 'shared state in redis');
  const cache = config.cacheEnabled
    ? new SemanticCache({
        store: redis
          ? new RedisCacheStore({ redis, prefix: config.redisPrefix, maxEntries: config.cacheMaxEntries, logger })
          : new MemoryCacheStore({ maxEntries: config.cacheMaxEntries }),
        threshold: config.cacheThreshold,
        ttlS: config.cacheTtlS,
        logger,
        observer: metrics.cacheObserver,
      })
    : undefined;
  const breaker = new CostBreaker({
    store: redis ? new RedisSpendStore(redis, config.redisPrefix, config.budgetWindowS * 1000) : new MemorySpendStore(config.budgetWindowS * 1000),
    pricing,
    budget: config.budget,
    windowS: config.budgetWindowS,
    logger,
    observer: metrics.breakerObserver,
    servesCache: config.breakerServesCache,
  });
  metrics.attachGuards({ cache, breaker });
  const limits = new RateLimits(
    { keyRpm: config.rateLimitKeyRpm, keyTpm: config.rateLimitKeyTpm, ipRpm: config.rateLimitIpRpm, ipTpm: config.rateLimitIpTpm },
    { redis, prefix: config.redisPrefix, onLimited: (what) => metrics.rateLimited(what) },
  );
  const keys: KeyStore = redis ? new FallbackKeyStore(new RedisKeyStore(redis, config.redisPrefix)) : new FileKeyStore(config.keysFile);

  const models = new ModelService({
    engine,
    models: options.models,
    onGeneration: (model, result) => metrics.observeGeneration(model, result),
    onLoad: (info) => metrics.observeLoad(info.name, info.loadMs ?? 0),
    breaker,
    limits,
    generationTimeoutMs: config.generationTimeoutMs,
  });
  let documents: DocumentService | undefined;
  // Documents open (and the demo corpus goes in) once the embedder is ready.
  let documentsState = models.embedderFor('retrieval') ? 'loading' : 'disabled';
  const app = createApp({
    models,
    metrics,
    documents: () => documents,
    components: (): Record<string, string> => (documentsState === 'disabled' ? {} : { documents: documentsState }),
    logger,
    bodyLimitBytes: config.bodyLimitBytes,
    sseHeartbeatMs: config.sseHeartbeatMs,
    settings: {
      device: config.device,
      max_batch: config.maxBatch,
      max_queue: config.maxQueue,
      body_limit_bytes: config.bodyLimitBytes,
      shared_state: redis ? 'redis' : 'memory',
      auth: config.authEnabled,
      rate_limits: { key_rpm: config.rateLimitKeyRpm, key_tpm: config.rateLimitKeyTpm, ip_rpm: config.rateLimitIpRpm, ip_tpm: config.rateLimitIpTpm },
    },
    cache,
    keys,
    authEnabled: config.authEnabled,
    metricsAuth: config.metricsAuth,
    limits,
    replicaId: config.replicaId,
    trustProxy: config.trustProxy,
    bodyTimeoutMs: config.bodyTimeoutMs,
    maxRequestsPerClient: config.maxRequestsPerClient,
    guards: async () => {
      await breaker.spent().catch(() => undefined);
      return { cache: cache?.stats() ?? { enabled: false }, breaker: { ...breaker.snapshot(), prices: pricing.describe() } };
    },
    ragPrompt: { system: config.ragSystemPrompt, ...(options.ragLayout ? { layout: options.ragLayout } : {}) },
  });
  const server = http.createServer({ connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS }, app);
  applyServerLimits(server, config);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  logger.info({ url, models: options.models.map((m) => m.name) }, 'listening; loading models');
  const loaded = models
    .loadAll((info, spec, err) => {
      if (info) logger.info({ model: spec.name, load_ms: info.loadMs, quantization: info.quantization }, 'model ready');
      else logger.error({ model: spec.name, err }, 'model failed to load');
    })
    .then(async () => {
      // Documents need the embedder: they open once it is ready.
      const retrieval = models.embedderFor('retrieval');
      if (!retrieval) return;
      const embedder = retrieval.name;
      if (engine.listModels().find((m) => m.name === embedder)?.status !== 'ready') {
        documentsState = 'failed: the embedder did not load';
        return;
      }
      try {
        const service = new DocumentService({
          engine,
          store: new DocumentStore(config.dataDir),
          embedder,
          queryInstruction: retrieval.queryInstruction,
          isReady: (name) => engine.listModels().some((m) => m.name === name && m.status === 'ready'),
          onReembed: (p, failure) => {
            if (failure) logger.error({ document: failure.id, err: failure.error, ...p }, 'document re-embedding failed; it keeps its old vectors');
            else if (!p.running || p.done % Math.max(1, Math.floor(p.total / 10)) === 0) logger.info(p, p.running ? 're-embedding documents' : 'documents re-embedded');
          },
          chunkTokens: config.chunkTokens,
          overlapTokens: config.chunkOverlapTokens,
          // Answers grounded on the old corpus are stale now.
          onChange: (previous) => {
            void cache?.invalidateCorpus(previous).then((n) => n > 0 && logger.debug({ corpus: previous, entries: n }, 'cache entries of the previous corpus dropped'));
          },
        });
        const n = await service.open();
        if (config.demoCorpus) {
          const added = await ingestDemoCorpus(service, PROJECT_ROOT, config.dataDir);
          if (added > 0) logger.info({ documents: added }, 'demo corpus ingested (first start)');
        }
        documents = service;
        documentsState = 'ready';
        logger.info({ documents: service.count, loaded: n, data_dir: config.dataDir, embedder }, 'documents ready');
        // Documents stored with another embedder move to this one in the background; their old vectors serve meanwhile.
        void service.reembedStale();
      } catch (err) {
        documentsState = 'failed: could not open the document store';
        logger.error({ err, data_dir: config.dataDir }, 'documents failed to open');
      }
    });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      logger.info({ grace_ms: config.shutdownGraceMs }, 'shutting down: no new connections');
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections go idle as their last response ends: close them then.
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), config.shutdownGraceMs);
      await done;
      clearInterval(sweep);
      clearTimeout(timer);
      for (const m of engine.listModels()) engine.unloadModel(m.name);
      await cache?.close();
      if (keys instanceof FileKeyStore) await keys.close();
      redis?.disconnect();
      logger.info('shut down');
    })();
    return closing;
  };
  return { url, app, port, models, loaded, close };
}
