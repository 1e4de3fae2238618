/**
 * The models a server runs: loads the configured ones in the background at
 * start-up, answers readiness, and resolves default model names per role.
 * No express types here.
 */
import type { Engine, GenerateInput, GenerateOptions, Generation, GenerationResult, LoadOptions, ModelInfo, ModelRole } from '../engine/index.ts';
import type { EmbedderUse } from '../models/manifest.ts';
import type { CostBreaker } from './cost/cost-breaker.ts';
import type { Identity, RateLimits } from './rate-limits.ts';

/** A model the server should load at start-up, with what the server (not the engine) needs to know of it. */
export type ModelSpec = LoadOptions & {
  /** Embedders: what this one serves when several are loaded (manifest `uses`). */
  uses?: readonly EmbedderUse[] | undefined;
  /** Embedders: text put before a retrieval query (manifest `queryInstruction`). */
  queryInstruction?: string | undefined;
};

/** One model's status as the probes report it. */
export interface ModelStatusRow {
  name: string;
  role: string;
  status: string;
  failure: string | null;
}

/** Options of {@link ModelService}. */
export interface ModelServiceOptions {
  engine: Engine;
  models: readonly ModelSpec[];
  /** Called with every finished generation (metrics). */
  onGeneration?: (model: string, result: GenerationResult) => void;
  /** Called when a model finishes loading. */
  onLoad?: (info: ModelInfo) => void;
  /** Reserves and settles the cost of every generation. */
  breaker?: CostBreaker;
  /** Charges generated tokens to the caller's allowance. */
  limits?: RateLimits;
  /** Wall-clock limit of every generation, ms (0 or absent: none), unless the call sets its own. */
  generationTimeoutMs?: number;
}

/** Tenant of requests made without an API key (auth off). */
export const DEFAULT_TENANT = 'default';

/** Who asked: the tenant (cache scope) and what rate limits count against. */
export interface RequestContext {
  tenant: string;
  identity: Identity;
}

/** The engine's default completion budget, when a request gives none. */
const ENGINE_DEFAULT_MAX_TOKENS = 256;

/** Prompt tokens before tokenizing: about 3 bytes per token is on the high side for the languages served. */
function estimatePromptTokens(input: GenerateInput): number {
  if (input.tokens) return input.tokens.length;
  const text = input.prompt ?? input.messages.map((m) => m.content).join('\n');
  return Math.ceil(Buffer.byteLength(text) / 3) + (input.messages?.length ?? 0) * 4;
}

/** Loads and tracks the configured models. */
export class ModelService {
  readonly engine: Engine;
  readonly specs: readonly ModelSpec[];
  readonly #onGeneration: ModelServiceOptions['onGeneration'];
  readonly #onLoad: ModelServiceOptions['onLoad'];
  readonly breaker: CostBreaker | undefined;
  readonly #limits: RateLimits | undefined;
  readonly #timeLimitMs: number;

  constructor(options: ModelServiceOptions) {
    this.engine = options.engine;
    this.specs = options.models;
    this.#onGeneration = options.onGeneration;
    this.#onLoad = options.onLoad;
    this.breaker = options.breaker;
    this.#limits = options.limits;
    this.#timeLimitMs = options.generationTimeoutMs ?? 0;
  }

  /**
   * Starts a generation: refuses it when the caller's token allowance is
   * used up or the cost budget is spent, reserves its worst-case cost, and
   * once it has finished (however it finished) settles the cost, charges the
   * tokens and reports it to the observers.
   */
  async generate(model: string, input: GenerateInput, options: GenerateOptions, ctx?: RequestContext): Promise<Generation> {
    if (ctx) await this.#limits?.checkTokens(ctx.identity);
    const ticket = await this.breaker?.reserve(model, estimatePromptTokens(input), options.params?.maxTokens ?? ENGINE_DEFAULT_MAX_TOKENS);
    let gen: Generation;
    try {
      gen = this.engine.generate(model, input, { timeLimitMs: this.#timeLimitMs, ...options });
    } catch (err) {
      await ticket?.settle({ promptTokens: 0, completionTokens: 0, engineMs: 0 });
      throw err;
    }
    void gen.result.then(async (r) => {
      this.#onGeneration?.(model, r);
      await ticket?.settle({ promptTokens: r.usage.promptTokens, completionTokens: r.usage.completionTokens, engineMs: r.timings.totalMs });
      if (ctx) await this.#limits?.addTokens(ctx.identity, r.usage.completionTokens).catch(() => undefined);
    });
    return gen;
  }

  /** Starts loading every configured model; resolves when all have settled. */
  async loadAll(onLoaded?: (info: ModelInfo | undefined, spec: ModelSpec, err?: unknown) => void): Promise<void> {
    await Promise.all(this.specs.map((s) => this.load(s, onLoaded)));
  }

  /** Loads one model (the engine makes a load of a name already loading join it). */
  load(spec: ModelSpec, onLoaded?: (info: ModelInfo | undefined, spec: ModelSpec, err?: unknown) => void): Promise<ModelInfo | undefined> {
    const { uses: _uses, queryInstruction: _instruction, ...load } = spec;
    return this.engine.loadModel(load).then(
      (info) => {
        this.#onLoad?.(info);
        onLoaded?.(info, spec);
        return info;
      },
      (err: unknown) => {
        onLoaded?.(undefined, spec, err);
        return undefined;
      },
    );
  }

  /** Every configured model with its current status (configured but unknown to the engine: loading). */
  statuses(): ModelStatusRow[] {
    const known = new Map(this.engine.listModels().map((m) => [m.name, m]));
    const out: ModelStatusRow[] = this.specs.map((s) => {
      const m = known.get(s.name);
      return { name: s.name, role: s.role, status: m?.status ?? 'loading', failure: m?.failure ?? null };
    });
    for (const m of known.values()) {
      if (!this.specs.some((s) => s.name === m.name)) out.push({ name: m.name, role: m.role, status: m.status, failure: m.failure ?? null });
    }
    return out;
  }

  /** The model to use for `role` when a request names none: the first configured one. */
  defaultModel(role: ModelRole): string | undefined {
    return this.specs.find((s) => s.role === role)?.name;
  }

  /**
   * The embedder for `use`: the first configured embedder that declares it
   * (BGE for retrieval, MiniLM for the semantic cache in the default set),
   * else the first embedder (one loaded embedder serves both).
   */
  embedderFor(use: EmbedderUse): ModelSpec | undefined {
    const embedders = this.specs.filter((s) => s.role === 'embedder');
    return embedders.find((s) => s.uses?.includes(use)) ?? embedders[0];
  }
}
