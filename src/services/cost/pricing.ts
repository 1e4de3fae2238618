/**
 * What a generation costs: a price per 1,000 prompt and completion tokens,
 * per model or by default, or for a local model a price per second of
 * engine time (its compute), as configured.
 */
import { z } from 'zod';

/** One model's price. */
export type Price = { inputPer1k: number; outputPer1k: number } | { perSecond: number };

const PriceJson = z.union([
  z.object({ input_per_1k: z.number().min(0), output_per_1k: z.number().min(0) }).strict(),
  z.object({ per_second: z.number().min(0) }).strict(),
]);
const PricesJson = z.record(z.string().min(1), PriceJson);

/**
 * Per-model prices from their JSON form (`CANDELA_PRICES`):
 * `{"model": {"input_per_1k": x, "output_per_1k": y} | {"per_second": z}}`;
 * empty means none. Throws with a message that says what is wrong.
 */
export function parsePrices(json: string): Record<string, Price> {
  if (json.trim() === '') return {};
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new Error('prices must be JSON: {"model": {"input_per_1k": 0.1, "output_per_1k": 0.2}} or {"model": {"per_second": 0.01}}');
  }
  const parsed = PricesJson.safeParse(raw);
  if (!parsed.success) throw new Error(`invalid prices: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const byModel: Record<string, Price> = {};
  for (const [m, p] of Object.entries(parsed.data)) byModel[m] = 'per_second' in p ? { perSecond: p.per_second } : { inputPer1k: p.input_per_1k, outputPer1k: p.output_per_1k };
  return byModel;
}

/** Prices by model with a default. */
export class Pricing {
  readonly #byModel: Map<string, Price>;
  readonly #default: Price;

  constructor(defaultPrice: Price, byModel: Record<string, Price> = {}) {
    this.#default = defaultPrice;
    this.#byModel = new Map(Object.entries(byModel));
  }

  /** Parses `{"model": {"input_per_1k": x, "output_per_1k": y} | {"per_second": z}}`; throws with a clear message. */
  static parse(json: string, defaultPrice: Price): Pricing {
    return new Pricing(defaultPrice, parsePrices(json));
  }

  /** The configured prices in the JSON shape of `CANDELA_PRICES` (for /health/stats and the load tester's scorecard). */
  describe(): { default: Record<string, number>; models: Record<string, Record<string, number>> } {
    const json = (p: Price): Record<string, number> => ('perSecond' in p ? { per_second: p.perSecond } : { input_per_1k: p.inputPer1k, output_per_1k: p.outputPer1k });
    return { default: json(this.#default), models: Object.fromEntries([...this.#byModel].map(([m, p]) => [m, json(p)])) };
  }

  /** Whether `model` has a price of its own (not only the default). */
  has(model: string): boolean {
    return this.#byModel.has(model);
  }

  price(model: string): Price {
    return this.#byModel.get(model) ?? this.#default;
  }

  /**
   * Worst-case cost before a generation runs: the prompt's tokens and every
   * allowed completion token. Time-priced models assume 10 completion tokens
   * per second; reconciliation corrects either way.
   */
  estimate(model: string, promptTokens: number, maxTokens: number): number {
    const p = this.price(model);
    if ('perSecond' in p) return p.perSecond * (maxTokens / 10 + promptTokens / 100);
    return (promptTokens * p.inputPer1k + maxTokens * p.outputPer1k) / 1000;
  }

  /** The actual cost of a finished (or cancelled) generation. */
  actual(model: string, promptTokens: number, completionTokens: number, engineMs: number): number {
    const p = this.price(model);
    if ('perSecond' in p) return (p.perSecond * engineMs) / 1000;
    return (promptTokens * p.inputPer1k + completionTokens * p.outputPer1k) / 1000;
  }
}
