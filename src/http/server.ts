/**
 * Starts Candela's HTTP server: engine, models (loaded in the background so
 * liveness answers at once and readiness turns green when they are in), the
 * app, and a graceful shutdown (stop accepting, let in-flight requests and
 * streams finish within the grace period, then close what is left).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { PROJECT_ROOT, type Config } from '../config.ts';
import { Engine } from '../engine/index.ts';
import { ingestDemoCorpus } from '../services/demo-corpus.ts';
import { DocumentStore } from '../services/document-store.ts';
import { DocumentService } from '../services/documents.ts';
import { Metrics } from '../services/metrics.ts';
import { ModelService, type ModelSpec } from '../services/model-service.ts';
import { createApp } from './app.ts';

/** Options of {@link startServer}. */
export interface ServerOptions {
  config: Config;
  /** Models to load at start-up. */
  models: readonly ModelSpec[];
  logger?: Logger;
}

/** A running server. */
export interface RunningServer {
  url: string;
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
  const engine = new Engine();
  const metrics = new Metrics(engine);
  const models = new ModelService({
    engine,
    models: options.models,
    onGeneration: (model, result) => metrics.observeGeneration(model, result),
    onLoad: (info) => metrics.observeLoad(info.name, info.loadMs ?? 0),
  });
  let documents: DocumentService | undefined;
  // Documents open (and the demo corpus goes in) once the embedder is ready.
  let documentsState = models.defaultModel('embedder') ? 'loading' : 'disabled';
  const app = createApp({
    models,
    metrics,
    documents: () => documents,
    components: (): Record<string, string> => (documentsState === 'disabled' ? {} : { documents: documentsState }),
    logger,
    bodyLimitBytes: config.bodyLimitBytes,
    sseHeartbeatMs: config.sseHeartbeatMs,
    settings: { device: config.device, max_batch: config.maxBatch, max_queue: config.maxQueue, body_limit_bytes: config.bodyLimitBytes },
  });
  const server = http.createServer(app);
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
      const embedder = models.defaultModel('embedder');
      if (!embedder) return;
      if (engine.listModels().find((m) => m.name === embedder)?.status !== 'ready') {
        documentsState = 'failed: the embedder did not load';
        return;
      }
      try {
        const service = new DocumentService({
          engine,
          store: new DocumentStore(config.dataDir),
          embedder,
          chunkTokens: config.chunkTokens,
          overlapTokens: config.chunkOverlapTokens,
        });
        const n = await service.open();
        if (config.demoCorpus) {
          const added = await ingestDemoCorpus(service, PROJECT_ROOT, config.dataDir);
          if (added > 0) logger.info({ documents: added }, 'demo corpus ingested (first start)');
        }
        documents = service;
        documentsState = 'ready';
        logger.info({ documents: service.count, loaded: n, data_dir: config.dataDir }, 'documents ready');
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
      logger.info('shut down');
    })();
    return closing;
  };
  return { url, port, models, loaded, close };
}
