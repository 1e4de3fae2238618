/**
 * The last answers' time to first token and total latency as paired bars, as
 * measured in the browser. An SVG scaled to its box; the numbers are also in
 * its accessible label.
 */
import { ms } from '../format.ts';

/** One answer's two latencies (milliseconds). */
export interface LatencyPoint {
  ttftMs: number;
  totalMs: number;
  cached: boolean;
}

const W = 320;
const H = 96;
const PAD = 4;

export function LatencyChart({ points }: { points: LatencyPoint[] }) {
  if (points.length === 0) return null;
  const max = Math.max(...points.map((p) => p.totalMs), 1);
  const slot = (W - PAD * 2) / Math.max(points.length, 10);
  const bar = Math.max(2, slot / 2 - 1);
  // At least 2 units tall, so a cache hit's few milliseconds still show beside seconds-long answers.
  const y = (v: number) => H - PAD - Math.max(2, (v / max) * (H - PAD * 2));
  const label = `Last ${points.length} answers, oldest first: ${points.map((p) => `TTFT ${ms(p.ttftMs)}, total ${ms(p.totalMs)}`).join('; ')}`;
  return (
    <figure class="chart">
      <figcaption>
        {points.length === 1 ? 'Last answer' : `Last ${points.length} answers`} (browser-measured) · <span class="key ttft">TTFT</span> <span class="key total">total</span> · max {ms(max)}
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={label} preserveAspectRatio="none">
        <line x1={PAD} x2={W - PAD} y1={H - PAD} y2={H - PAD} class="axis" />
        {points.map((p, i) => {
          const x = PAD + i * slot;
          return (
            <g key={i} class={p.cached ? 'cached' : undefined}>
              <rect class="ttft" x={x} y={y(p.ttftMs)} width={bar} height={H - PAD - y(p.ttftMs)}>
                <title>TTFT {ms(p.ttftMs)}</title>
              </rect>
              <rect class="total" x={x + bar + 1} y={y(p.totalMs)} width={bar} height={H - PAD - y(p.totalMs)}>
                <title>
                  total {ms(p.totalMs)}
                  {p.cached ? ' (cache hit)' : ''}
                </title>
              </rect>
            </g>
          );
        })}
      </svg>
    </figure>
  );
}
