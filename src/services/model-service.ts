/**
 * Model lifecycle: the models a server runs. Loads the configured ones in the
 * background at start-up, loads and unloads on request, answers readiness,
 * and resolves default model names per role. Running a model is
 * the job of `InferenceService` (inference.ts).
 * No express types here.
 */
import type { Engine, LoadOptions, ModelInfo, ModelRole, SchedulerStats } from '../engine/index.ts';
import type { EmbedderUse } from '../models/manifest.ts';

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
  /** Called when a model finishes loading. */
  onLoad?: (info: ModelInfo) => void;
}

/** Loads, unloads and tracks the models. */
export class ModelService {
  readonly #engine: Engine;
  readonly specs: readonly ModelSpec[];
  readonly #onLoad: ModelServiceOptions['onLoad'];

  constructor(options: ModelServiceOptions) {
    this.#engine = options.engine;
    this.specs = options.models;
    this.#onLoad = options.onLoad;
  }

  /** Starts loading every configured model; resolves when all have settled. */
  async loadAll(onLoaded?: (info: ModelInfo | undefined, spec: ModelSpec, err?: unknown) => void): Promise<void> {
    await Promise.all(this.specs.map((s) => this.load(s, onLoaded)));
  }

  /** Loads one model (the engine makes a load of a name already loading join it). */
  load(spec: ModelSpec, onLoaded?: (info: ModelInfo | undefined, spec: ModelSpec, err?: unknown) => void): Promise<ModelInfo | undefined> {
    const { uses: _uses, queryInstruction: _instruction, ...load } = spec;
    return this.#engine.loadModel(load).then(
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
    const known = new Map(this.#engine.listModels().map((m) => [m.name, m]));
    const out: ModelStatusRow[] = this.specs.map((s) => {
      const m = known.get(s.name);
      return { name: s.name, role: s.role, status: m?.status ?? 'loading', failure: m?.failure ?? null };
    });
    for (const m of known.values()) {
      if (!this.specs.some((s) => s.name === m.name)) out.push({ name: m.name, role: m.role, status: m.status, failure: m.failure ?? null });
    }
    return out;
  }

  /** Every model the engine knows, loaded or loading or failed. */
  listModels(): ModelInfo[] {
    return this.#engine.listModels();
  }

  /** One model's figures; `MODEL_NOT_FOUND` when the engine does not know it. */
  modelInfo(name: string): ModelInfo {
    return this.#engine.modelInfo(name);
  }

  /** Whether `name` is loaded and serving. */
  isReady(name: string): boolean {
    return this.#engine.listModels().some((m) => m.name === name && m.status === 'ready');
  }

  /** Unloads a model (in-flight work on it finishes). False if unknown. */
  unload(name: string): boolean {
    return this.#engine.unloadModel(name);
  }

  /** Unloads every model (shutdown). */
  unloadAll(): void {
    for (const m of this.#engine.listModels()) this.#engine.unloadModel(m.name);
  }

  /** An LLM's scheduler figures (running, waiting, prefix cache). */
  schedulerStats(name: string): SchedulerStats {
    return this.#engine.schedulerStats(name);
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
