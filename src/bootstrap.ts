/**
 * The composition root: the one place that builds the process and owns its
 * start-up and shutdown order. Nothing else picks backends or stores.
 *
 * Start-up: log the effective config → engine and metrics → Redis (when
 * configured) → stores (cache, spend, rate limits, keys) → services (model
 * lifecycle, inference admission, RAG) → the express app from those ready
 * services → listen → load the models in the background (liveness answers at
 * once; readiness turns green when they are in) → open the documents once the
 * embedder is ready.
 *
 * Shutdown: drain HTTP (stop accepting, let in-flight requests and streams
 * finish within the grace period, then close what is left) → stop the
 * schedulers (engine threads, cache tail) → close Redis → flush the log.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import type { Redis } from 'ioredis';
import { PROJECT_ROOT, redactConfig, type Config } from './config.ts';
import { Engine } from './engine/index.ts';
import { createKeyStore } from './services/key-store.ts';
import { MemoryCacheStore } from './services/cache/memory-store.ts';
import { RedisCacheStore } from './services/cache/redis-store.ts';
import { SemanticCache } from './services/cache/semantic-cache.ts';
import { CostBreaker } from './services/cost/cost-breaker.ts';
import { Pricing } from './services/cost/pricing.ts';
import { MemorySpendStore, RedisSpendStore } from './services/cost/spend-store.ts';
import { RateLimits } from './services/rate-limits.ts';
import { connectRedis, redactRedisUrl } from './services/redis.ts';
import { ingestDemoCorpus } from './services/demo-corpus.ts';
import { createDocumentStore, type DocumentStore } from './services/document-store.ts';
import { DocumentService } from './services/documents.ts';
import { Metrics } from './services/metrics.ts';
import { InferenceService } from './services/inference.ts';
import { ModelService, type ModelSpec } from './services/model-service.ts';
import { createApp } from './http/app.ts';
import { applyServerLimits, CONNECTIONS_CHECKING_INTERVAL_MS } from './http/wire/server-limits.ts';
import type { RagLayout } from './services/rag-prompt.ts';
import { RagService } from './services/rag.ts';
import { Retriever } from './services/retrieval/retriever.ts';

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
  /** The admission path of every model call. */
  inference: InferenceService;
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
  const keyStore = createKeyStore(config, { redis, outageGrace: true });

  const models = new ModelService({
    engine,
    models: options.models,
    onLoad: (info) => metrics.observeLoad(info.name, info.loadMs ?? 0),
  });
  const inference = new InferenceService({
    engine,
    models,
    onGeneration: (model, result) => metrics.observeGeneration(model, result),
    observer: metrics.inferenceObserver,
    breaker,
    limits,
    generationTimeoutMs: config.generationTimeoutMs,
    maxBatch: config.maxBatch,
    maxQueue: config.maxQueue,
  });
  let documents: DocumentService | undefined;
  let documentStore: DocumentStore | undefined;
  // Documents open (and the demo corpus goes in) once the embedder is ready.
  let documentsState = models.embedderFor('retrieval') ? 'loading' : 'disabled';
  const retriever = new Retriever({ models, inference, documents: () => documents });
  const rag = new RagService({
    models,
    inference,
    documents: () => documents,
    retriever,
    onStages: (r, k) => metrics.observeRag(r, k),
    cache,
    prompt: { system: config.ragSystemPrompt, ...(options.ragLayout ? { layout: options.ragLayout } : {}) },
  });
  const app = createApp({
    models,
    inference,
    rag,
    retriever,
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
    keys: keyStore.store,
    authEnabled: config.authEnabled,
    metricsAuth: config.metricsAuth,
    limits,
    replicaId: config.replicaId,
    trustProxy: config.trustProxy,
    bodyTimeoutMs: config.bodyTimeoutMs,
    maxRequestsPerClient: config.maxRequestsPerClient,
    guards: async () => {
      await breaker.spent().catch(() => undefined);
      const docs = documents
        ? { store: documentStore?.backend, count: documents.count, corpus_version: documents.version, corpus_revision: documents.revision }
        : { state: documentsState };
      return { cache: cache?.stats() ?? { enabled: false }, breaker: { ...breaker.snapshot(), prices: pricing.describe() }, documents: docs };
    },
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
      if (!models.isReady(embedder)) {
        documentsState = 'failed: the embedder did not load';
        return;
      }
      try {
        // With Redis, Redis is the documents' store of record and every replica follows it.
        documentStore = createDocumentStore({ dataDir: config.dataDir, redis, redisPrefix: config.redisPrefix, logger });
        const service = new DocumentService({
          engine: inference,
          store: documentStore,
          embedder,
          queryInstruction: retrieval.queryInstruction,
          isReady: (name) => models.isReady(name),
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
          const added = await ingestDemoCorpus(service, PROJECT_ROOT, documentStore);
          if (added > 0) logger.info({ documents: added }, 'demo corpus ingested (first start)');
        }
        documents = service;
        documentsState = 'ready';
        logger.info({ documents: service.count, loaded: n, store: documentStore.backend, revision: service.revision, data_dir: config.dataDir, embedder }, 'documents ready');
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
      // 1. Drain HTTP: no new connections; in-flight requests and streams finish within the grace period.
      logger.info({ grace_ms: config.shutdownGraceMs }, 'shutting down: no new connections');
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections go idle as their last response ends: close them then.
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), config.shutdownGraceMs);
      await done;
      clearInterval(sweep);
      clearTimeout(timer);
      // 2. Stop the schedulers: the models' engine threads, the cache's Redis tail and sweeper, the keys file.
      models.unloadAll();
      await cache?.close();
      await documentStore?.close();
      await keyStore.close();
      // 3. Close Redis once the last spend settlements and counters are written (QUIT waits for their
      //    replies; a Redis that does not answer within a second is dropped).
      if (redis) {
        await Promise.race([redis.quit().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
        redis.disconnect();
      }
      // 4. Flush the log.
      logger.info('shut down');
      logger.flush();
    })();
    return closing;
  };
  return { url, app, port, models, inference, loaded, close };
}
