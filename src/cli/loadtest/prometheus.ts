/**
 * The few numbers a soak run reads from a server's Prometheus text: process
 * RSS and the server's own end-to-end latency (sum and count of
 * `vllm:e2e_request_latency_seconds`), for correlation with the client's.
 */

/** Sum of every series of `name` (all label sets); null when absent. */
export function metricSum(text: string, name: string): number | null {
  let total: number | null = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const value = Number(rest.replace(/^\{.*\}/, '').trim().split(/\s+/)[0]);
    if (Number.isFinite(value)) total = (total ?? 0) + value;
  }
  return total;
}

/** What one scrape says. */
export interface Scrape {
  rssBytes: number | null;
  e2eSumS: number | null;
  e2eCount: number | null;
}

/** Reads RSS and server e2e latency from a /metrics text. */
export function readScrape(text: string): Scrape {
  return {
    rssBytes: metricSum(text, 'process_resident_memory_bytes'),
    e2eSumS: metricSum(text, 'vllm:e2e_request_latency_seconds_sum'),
    e2eCount: metricSum(text, 'vllm:e2e_request_latency_seconds_count'),
  };
}

/** Mean server e2e (ms) of the requests finished between two scrapes; null without them. */
export function meanBetween(a: Scrape, b: Scrape): number | null {
  if (a.e2eSumS === null || b.e2eSumS === null || a.e2eCount === null || b.e2eCount === null) return null;
  const n = b.e2eCount - a.e2eCount;
  return n > 0 ? ((b.e2eSumS - a.e2eSumS) / n) * 1000 : null;
}
