/** How numbers read on the page. */

/** Milliseconds: `0.4 ms`, `87 ms`, `1.25 s`; `—` when unknown. */
export function ms(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  if (v < 10) return `${v.toFixed(1)} ms`;
  if (v < 1000) return `${Math.round(v)} ms`;
  return `${(v / 1000).toFixed(2)} s`;
}

/** Bytes in binary units: `512 B`, `1.5 MiB`; `—` when unknown. */
export function bytes(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let x = v;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${i === 0 ? x : x.toFixed(1)} ${units[i]}`;
}

/** A count with thousands separators, or in millions/billions for parameters. */
export function count(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  if (v >= 1e9) return `${(v / 1e9).toFixed(2)} B`;
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)} M`;
  return v.toLocaleString('en-US');
}

/** Tokens per second, `— tok/s` while unknown. */
export function rate(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '— tok/s';
  return `${v >= 100 ? Math.round(v) : v.toFixed(1)} tok/s`;
}

/** Seconds as `3 d 4 h`, `5 h 2 min`, `12 min`, `40 s`. */
export function duration(s: number): string {
  if (s < 60) return `${Math.floor(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/** A short form of a long hex id or version: its first 12 characters. */
export function short(id: string): string {
  return id.length > 12 ? id.slice(0, 12) : id;
}
