/**
 * A small terminal progress display for model pulls, written to stderr so stdout stays clean
 * for machine-readable output. On a TTY one line per file is redrawn in place with "\r"; when
 * stderr is a pipe or a log file, a line is printed at every 10% so logs stay short.
 */
import type { PullProgressEvent } from "./pull.ts";

/** The part of a writable stream the progress display needs (process.stderr fits). */
export interface ProgressStream {
  write(chunk: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

/** Options of {@link createProgressReporter}. */
export interface ProgressOptions {
  /** Where to draw; process.stderr by default. */
  readonly stream?: ProgressStream;
  /** Force TTY (redraw) or line mode; defaults to stream.isTTY. */
  readonly tty?: boolean;
  /** Clock in milliseconds, injectable for tests. */
  readonly now?: () => number;
}

const MB = 1024 * 1024;

/** Formats bytes as mebibytes with one decimal, e.g. "37.1". */
export function formatMB(bytes: number): string {
  return (bytes / MB).toFixed(1);
}

/** Formats seconds as "42s", "3m07s" or "1h02m". */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

interface Current {
  key: string;
  startedAt: number;
  startBytes: number;
  lastDraw: number;
  lastDecile: number;
  open: boolean;
}

/**
 * Returns an `onProgress` callback for {@link import("./pull.ts").pullModels} that draws
 * percent, MB done/total, MB/s and ETA for each download, verification and extraction.
 */
export function createProgressReporter(options: ProgressOptions = {}): (event: PullProgressEvent) => void {
  const stream = options.stream ?? process.stderr;
  const tty = options.tty ?? stream.isTTY === true;
  const now = options.now ?? Date.now;
  let cur: Current | null = null;

  const endLine = () => {
    if (cur?.open && tty) stream.write("\n");
    if (cur) cur.open = false;
  };

  return (event) => {
    if (event.phase === "skip" || event.phase === "done" || event.phase === "resolve") {
      endLine();
      cur = null;
      if (event.phase === "skip") stream.write(`${event.model}: already present and verified (${formatMB(event.total)} MB)\n`);
      if (event.phase === "done") stream.write(`${event.model}: ready (${formatMB(event.total)} MB)\n`);
      return;
    }
    if (event.phase !== "download" && event.total > 0 && event.total < MB) return; // small files: not worth a line
    const key = `${event.model}|${event.phase}|${event.file ?? ""}`;
    const t = now();
    if (!cur || cur.key !== key) {
      endLine();
      const start = event.resumedFrom ?? event.bytes;
      cur = { key, startedAt: t, startBytes: start, lastDraw: -Infinity, lastDecile: -1, open: false };
    }
    const total = event.total;
    const finished = total > 0 && event.bytes >= total;
    const pct = total > 0 ? Math.min(100, (event.bytes / total) * 100) : 0;
    const elapsed = (t - cur.startedAt) / 1000;
    const speed = elapsed > 0 ? (event.bytes - cur.startBytes) / elapsed : 0;
    const eta = speed > 0 && total > 0 ? (total - event.bytes) / speed : NaN;
    const label = `${event.model} ${event.phase} ${event.file ?? ""}`.trim();
    const stats = total > 0
      ? `${pct.toFixed(0).padStart(3)}% ${formatMB(event.bytes)}/${formatMB(total)} MB`
      : `${formatMB(event.bytes)} MB`;
    const rate = speed > 0 ? ` ${formatMB(speed)} MB/s ETA ${finished ? "0s" : formatEta(eta)}` : "";
    const resumed = event.resumedFrom ? ` (resumed at ${formatMB(event.resumedFrom)} MB)` : "";
    if (tty) {
      if (!finished && t - cur.lastDraw < 100) return;
      cur.lastDraw = t;
      const width = Math.max(10, Math.min(30, (stream.columns ?? 100) - label.length - 60));
      const filled = Math.round((pct / 100) * width);
      const bar = total > 0 ? ` [${"#".repeat(filled)}${"-".repeat(width - filled)}]` : "";
      stream.write(`\r${label}${bar} ${stats}${rate}${resumed}\x1b[K`);
      cur.open = true;
      if (finished) endLine();
    } else {
      const decile = total > 0 ? Math.floor(pct / 10) : 0;
      if (decile <= cur.lastDecile) return;
      cur.lastDecile = decile;
      stream.write(`${label} ${stats}${rate}${resumed}\n`);
    }
  };
}
