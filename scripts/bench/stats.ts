/** Small statistics helpers for the benchmark scripts. */

/** The q-quantile (0..1) of `xs` by nearest rank; NaN for none. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

export const median = (xs: readonly number[]): number => quantile(xs, 0.5);

/** Candela ÷ peer, or null when either side is missing. */
export function ratio(candela: number | null | undefined, peer: number | null | undefined): number | null {
  if (candela == null || peer == null || !Number.isFinite(candela) || !Number.isFinite(peer) || peer === 0) return null;
  return candela / peer;
}

/** Rounds to `d` decimals (for JSON and tables). */
export const round = (x: number | null | undefined, d = 2): number | null => (x == null || !Number.isFinite(x) ? null : Number(x.toFixed(d)));
