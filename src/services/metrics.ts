/**
 * Prometheus metrics. LLM metrics use vLLM's names, label and buckets
 * (`vllm:time_to_first_token_seconds`, …, label `model_name`) so dashboards
 * written for vLLM work unchanged; Candela's own are `candela_<what>_<unit>`.
 * No express types here: the HTTP layer calls {@link Metrics.observeHttp}.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { memoryInfo, type Engine, type GenerationResult } from '../engine/index.ts';
import type { CacheObserver, CacheOutcome, SemanticCache } from './cache/semantic-cache.ts';
import type { BreakerObserver, CostBreaker } from './cost/cost-breaker.ts';
import type { InferenceObserver, InferenceOp, InferenceOutcome } from './inference.ts';
import { memoryLimitBytes } from './memory-limit.ts';

const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560];
const TPOT_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const LATENCY_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** The server's metrics and their registry. */
export class Metrics {
  readonly registry = new Registry();
  readonly #http: Counter<'method' | 'route' | 'status'>;
  readonly #httpDuration: Histogram<'method' | 'route' | 'status'>;
  readonly #ttft: Histogram<'model_name'>;
  readonly #tpot: Histogram<'model_name'>;
  readonly #e2e: Histogram<'model_name'>;
  readonly #queue: Histogram<'model_name'>;
  readonly #promptTokens: Counter<'model_name'>;
  readonly #prefixQueries: Counter<'model_name'>;
  readonly #prefixHits: Counter<'model_name'>;
  readonly #genTokens: Counter<'model_name'>;
  readonly #finished: Counter<'model_name' | 'finished_reason'>;
  readonly #loadSeconds: Gauge<'model'>;
  readonly #retrieval: Histogram;
  readonly #rerank: Histogram;
  readonly #cacheLookups: Counter<'outcome'>;
  readonly #cacheLookupSeconds: Histogram<'outcome'>;
  readonly #cacheErrors: Counter<'op'>;
  readonly #breakerRejections: Counter;
  readonly #spend: Counter;
  readonly #breakerStoreErrors: Counter;
  readonly #authFailures: Counter<'reason'>;
  readonly #rateLimited: Counter<'limit'>;
  readonly #inferenceCalls: Counter<'model' | 'op' | 'outcome'>;
  readonly #inferenceQueue: Histogram<'model' | 'op'>;
  readonly #inferenceRun: Histogram<'model' | 'op'>;
  readonly #inferenceRunning: Gauge<'model'>;
  readonly #inferenceWaiting: Gauge<'model'>;
  #cache: SemanticCache | undefined;
  #breaker: CostBreaker | undefined;

  constructor(engine: Engine) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.#http = new Counter({ name: 'candela_http_requests_total', help: 'HTTP requests by route template and status', labelNames: ['method', 'route', 'status'], registers });
    this.#httpDuration = new Histogram({
      name: 'candela_http_request_duration_seconds',
      help: 'HTTP request duration by route template and status',
      labelNames: ['method', 'route', 'status'],
      buckets: HTTP_BUCKETS,
      registers,
    });
    this.#ttft = new Histogram({ name: 'vllm:time_to_first_token_seconds', help: 'Time to first token (from arrival)', labelNames: ['model_name'], buckets: TTFT_BUCKETS, registers });
    this.#tpot = new Histogram({ name: 'vllm:time_per_output_token_seconds', help: 'Time per output token after the first', labelNames: ['model_name'], buckets: TPOT_BUCKETS, registers });
    this.#e2e = new Histogram({ name: 'vllm:e2e_request_latency_seconds', help: 'End-to-end generation latency', labelNames: ['model_name'], buckets: LATENCY_BUCKETS, registers });
    this.#queue = new Histogram({ name: 'vllm:request_queue_time_seconds', help: 'Time waiting for a batch slot', labelNames: ['model_name'], buckets: LATENCY_BUCKETS, registers });
    this.#promptTokens = new Counter({ name: 'vllm:prompt_tokens_total', help: 'Prompt tokens processed', labelNames: ['model_name'], registers });
    this.#genTokens = new Counter({ name: 'vllm:generation_tokens_total', help: 'Tokens generated', labelNames: ['model_name'], registers });
    this.#prefixQueries = new Counter({ name: 'vllm:prefix_cache_queries_total', help: 'Prompt tokens looked up in the prefix cache', labelNames: ['model_name'], registers });
    this.#prefixHits = new Counter({ name: 'vllm:prefix_cache_hits_total', help: 'Prompt tokens whose K/V came from the prefix cache', labelNames: ['model_name'], registers });
    this.#finished = new Counter({ name: 'vllm:request_success_total', help: 'Finished generations by finish reason', labelNames: ['model_name', 'finished_reason'], registers });
    this.#loadSeconds = new Gauge({ name: 'candela_model_load_seconds', help: 'Seconds the last load of each model took', labelNames: ['model'], registers });
    const stageBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
    this.#retrieval = new Histogram({ name: 'candela_retrieval_seconds', help: 'RAG retrieval (query embedding + index search)', buckets: stageBuckets, registers });
    this.#rerank = new Histogram({ name: 'candela_rerank_seconds', help: 'RAG reranking with the cross-encoder', buckets: stageBuckets, registers });
    const schedulerGauge = (name: string, help: string, pick: (s: { running: number; waiting: number; prefixCacheBytes: number }) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['model_name'],
        registers,
        collect() {
          this.reset();
          for (const m of engine.listModels()) {
            if (m.role === 'llm' && m.status === 'ready') this.set({ model_name: m.name }, pick(engine.schedulerStats(m.name)));
          }
        },
      });
    this.#cacheLookups = new Counter({ name: 'candela_cache_lookups_total', help: 'Semantic cache lookups by outcome (exact, semantic, miss)', labelNames: ['outcome'], registers });
    this.#cacheLookupSeconds = new Histogram({
      name: 'candela_cache_lookup_seconds',
      help: 'Cache lookup time by outcome (exact: key lookup; semantic and miss: after the query embedding, index search and fetch)',
      labelNames: ['outcome'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers,
    });
    this.#cacheErrors = new Counter({ name: 'candela_cache_store_errors_total', help: 'Cache store failures (requests went on without the cache)', labelNames: ['op'], registers });
    // Read at scrape time: the guards are attached after construction.
    const guards = { cache: () => this.#cache, breaker: () => this.#breaker };
    new Gauge({
      name: 'candela_cache_entries',
      help: 'Entries in this replica’s cache index',
      registers,
      collect() {
        this.set(guards.cache()?.store.size() ?? 0);
      },
    });
    new Gauge({
      name: 'candela_cache_store_up',
      help: '1 while the cache store is in use, 0 while its breaker skips it',
      registers,
      collect() {
        const c = guards.cache();
        this.set(c && c.state !== 'open' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'candela_breaker_state',
      help: 'Cost breaker state: 0 closed, 1 half-open, 2 open',
      registers,
      collect() {
        const st = guards.breaker()?.snapshot().state ?? 'closed';
        this.set(st === 'open' ? 2 : st === 'half-open' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'candela_breaker_window_spend',
      help: 'Spend in the current budget window (shared across replicas with Redis)',
      registers,
      async collect() {
        const b = guards.breaker();
        this.set(b ? await b.spent().catch(() => b.snapshot().spent) : 0);
      },
    });
    new Gauge({
      name: 'candela_breaker_budget',
      help: 'Budget per window (0: breaker off)',
      registers,
      collect() {
        this.set(guards.breaker()?.snapshot().budget ?? 0);
      },
    });
    this.#breakerRejections = new Counter({ name: 'candela_breaker_rejections_total', help: 'Requests refused because the cost budget was spent', registers });
    this.#spend = new Counter({ name: 'candela_spend_total', help: 'Cost of finished generations (this replica)', registers });
    this.#breakerStoreErrors = new Counter({ name: 'candela_breaker_store_errors_total', help: 'Spend store failures (spend counted in memory meanwhile)', registers });
    this.#authFailures = new Counter({ name: 'candela_auth_failures_total', help: 'Requests refused by API key checks', labelNames: ['reason'], registers });
    this.#rateLimited = new Counter({ name: 'candela_rate_limited_total', help: 'Requests refused by rate limits', labelNames: ['limit'], registers });
    this.#inferenceCalls = new Counter({
      name: 'candela_inference_requests_total',
      help: 'Model calls through admission by operation (generate, embed, rerank, tokenize) and outcome (ok, error, cancelled, overloaded)',
      labelNames: ['model', 'op', 'outcome'],
      registers,
    });
    this.#inferenceQueue = new Histogram({
      name: 'candela_inference_queue_seconds',
      help: 'Time a model call waited for a slot of its model (admission queue)',
      labelNames: ['model', 'op'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.#inferenceRun = new Histogram({
      name: 'candela_inference_seconds',
      help: 'Time a model call spent in the engine once admitted',
      labelNames: ['model', 'op'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    this.#inferenceRunning = new Gauge({ name: 'candela_inference_running', help: 'Model calls holding a slot of their model', labelNames: ['model'], registers });
    this.#inferenceWaiting = new Gauge({ name: 'candela_inference_waiting', help: 'Model calls waiting for a slot of their model', labelNames: ['model'], registers });
    new Gauge({
      name: 'candela_model_ready',
      help: 'Per model: 1 once loaded and serving, 0 while loading or after a failed load',
      labelNames: ['model', 'role'],
      registers,
      collect() {
        this.reset();
        for (const m of engine.listModels()) this.set({ model: m.name, role: m.role }, m.status === 'ready' ? 1 : 0);
      },
    });
    // Device gauges read the engine at scrape time; the memory pair exists only on a GPU.
    new Gauge({
      name: 'candela_device_info',
      help: 'The device models run on (cpu, cuda:N) and whether CUDA is compiled in; always 1',
      labelNames: ['device', 'cuda_compiled'],
      registers,
      collect() {
        const m = memoryInfo();
        this.reset();
        this.set({ device: m.device, cuda_compiled: String(m.cudaCompiled) }, 1);
      },
    });
    const deviceGauge = (name: string, help: string, pick: (m: ReturnType<typeof memoryInfo>) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ['device'],
        registers,
        collect() {
          const m = memoryInfo();
          const v = pick(m);
          this.reset();
          if (v !== undefined) this.set({ device: m.device }, v);
        },
      });
    deviceGauge('candela_device_memory_used_bytes', 'GPU memory in use on the device models run on (absent on CPU)', (m) => m.deviceUsedBytes);
    deviceGauge('candela_device_memory_total_bytes', 'GPU memory of the device models run on (absent on CPU)', (m) => m.deviceTotalBytes);
    new Gauge({
      name: 'candela_memory_limit_bytes',
      help: 'Memory this process may use: its cgroup limit (container, pod), else the host total',
      registers,
      collect() {
        this.set(memoryLimitBytes());
      },
    });
    schedulerGauge('vllm:num_requests_running', 'Sequences in the running batch', (s) => s.running);
    schedulerGauge('vllm:num_requests_waiting', 'Requests waiting for a batch slot', (s) => s.waiting);
    schedulerGauge('candela_prefix_cache_bytes', 'Bytes of K/V held for prompt prefix reuse', (s) => s.prefixCacheBytes);
  }

  /** Records one HTTP request. */
  observeHttp(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status: String(status) };
    this.#http.inc(labels);
    this.#httpDuration.observe(labels, seconds);
  }

  /** Records a finished generation. */
  observeGeneration(model: string, r: GenerationResult): void {
    const l = { model_name: model };
    this.#promptTokens.inc(l, r.usage.promptTokens);
    this.#prefixQueries.inc(l, r.usage.promptTokens);
    this.#prefixHits.inc(l, r.usage.cachedPromptTokens);
    this.#genTokens.inc(l, r.usage.completionTokens);
    this.#finished.inc({ ...l, finished_reason: r.finishReason });
    this.#queue.observe(l, r.timings.queueMs / 1000);
    this.#e2e.observe(l, r.timings.totalMs / 1000);
    if (r.usage.completionTokens > 0) this.#ttft.observe(l, r.timings.ttftMs / 1000);
    if (r.usage.completionTokens > 1) this.#tpot.observe(l, r.timings.decodeMs / 1000 / (r.usage.completionTokens - 1));
  }

  /** Records the retrieval and rerank stages of one RAG query (rerank undefined: no reranker). */
  observeRag(retrievalMs: number, rerankMs: number | undefined): void {
    this.#retrieval.observe(retrievalMs / 1000);
    if (rerankMs !== undefined) this.#rerank.observe(rerankMs / 1000);
  }

  /** Reports cache and breaker state through the gauges above. */
  attachGuards(guards: { cache?: SemanticCache | undefined; breaker?: CostBreaker | undefined }): void {
    this.#cache = guards.cache;
    this.#breaker = guards.breaker;
  }

  /** Observer for the semantic cache. */
  get cacheObserver(): CacheObserver {
    return {
      lookup: (outcome: CacheOutcome, seconds: number) => {
        this.#cacheLookups.inc({ outcome });
        this.#cacheLookupSeconds.observe({ outcome }, seconds);
      },
      error: (op: string) => this.#cacheErrors.inc({ op }),
    };
  }

  /** Observer for the cost breaker. */
  get breakerObserver(): BreakerObserver {
    return {
      rejected: () => this.#breakerRejections.inc(),
      spent: (amount: number) => this.#spend.inc(amount),
      storeError: () => this.#breakerStoreErrors.inc(),
    };
  }

  /** Observer for the inference service (the admission path). */
  get inferenceObserver(): InferenceObserver {
    return {
      call: (model: string, op: InferenceOp, outcome: InferenceOutcome, queueS: number, runS: number) => {
        this.#inferenceCalls.inc({ model, op, outcome });
        if (op !== 'tokenize' && outcome !== 'overloaded') this.#inferenceQueue.observe({ model, op }, queueS);
        if (runS > 0) this.#inferenceRun.observe({ model, op }, runS);
      },
      queue: (model: string, running: number, waiting: number) => {
        this.#inferenceRunning.set({ model }, running);
        this.#inferenceWaiting.set({ model }, waiting);
      },
      // vLLM counts an embedding model's input as prompt tokens too.
      inputTokens: (model: string, tokens: number) => this.#promptTokens.inc({ model_name: model }, tokens),
    };
  }

  authFailure(reason: string): void {
    this.#authFailures.inc({ reason });
  }

  rateLimited(limit: string): void {
    this.#rateLimited.inc({ limit });
  }

  /** Records a model load. */
  observeLoad(model: string, ms: number): void {
    this.#loadSeconds.set({ model }, ms / 1000);
  }
}
