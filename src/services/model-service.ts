/**
 * The models a server runs: loads the configured ones in the background at
 * start-up, answers readiness, and resolves default model names per role.
 * No express types here.
 */
import type { Engine, GenerateInput, GenerateOptions, Generation, GenerationResult, LoadOptions, ModelInfo, ModelRole } from '../engine/index.ts';

/** A model the server should load at start-up. */
export type ModelSpec = LoadOptions;

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
}

/** Loads and tracks the configured models. */
export class ModelService {
  readonly engine: Engine;
  readonly specs: readonly ModelSpec[];
  readonly #onGeneration: ModelServiceOptions['onGeneration'];
  readonly #onLoad: ModelServiceOptions['onLoad'];

  constructor(options: ModelServiceOptions) {
    this.engine = options.engine;
    this.specs = options.models;
    this.#onGeneration = options.onGeneration;
    this.#onLoad = options.onLoad;
  }

  /** Starts a generation whose final record is reported to the observers. */
  generate(model: string, input: GenerateInput, options: GenerateOptions): Generation {
    const gen = this.engine.generate(model, input, options);
    void gen.result.then((r) => this.#onGeneration?.(model, r));
    return gen;
  }

  /** Starts loading every configured model; resolves when all have settled. */
  async loadAll(onLoaded?: (info: ModelInfo | undefined, spec: ModelSpec, err?: unknown) => void): Promise<void> {
    await Promise.all(this.specs.map((s) => this.load(s, onLoaded)));
  }

  /** Loads one model (the engine makes a load of a name already loading join it). */
  load(spec: ModelSpec, onLoaded?: (info: ModelInfo | undefined, spec: ModelSpec, err?: unknown) => void): Promise<ModelInfo | undefined> {
    return this.engine.loadModel(spec).then(
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
}
