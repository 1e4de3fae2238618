/**
 * Verification of model files: sha256 by streaming, and the
 * `.candela-verified.json` stamp (sha256, size and mtime per file) that lets
 * a re-run skip hashing gigabytes that have not changed.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.ts";
import type { PinnedFile } from "./manifest.ts";
import type { PullContext } from "./pull-context.ts";

export const STAMP = ".candela-verified.json";

/** What was verified, per file path. */
export interface Stamp {
  files: Record<string, { sha256: string; size: number; mtimeMs: number }>;
}

/** "ok": stamp matches; "hashed": verified now by hashing; "missing": absent or wrong. */
export async function checkFile(ctx: PullContext, model: string, dir: string, file: PinnedFile, stamp: Stamp): Promise<"ok" | "hashed" | "missing"> {
  const path = join(dir, file.path);
  const st = await stat(path).catch(() => null);
  if (!st || !st.isFile() || st.size !== file.size) return "missing";
  const mark = stamp.files[file.path];
  if (mark && mark.sha256 === file.sha256 && mark.size === st.size && mark.mtimeMs === st.mtimeMs) return "ok";
  const emit = (bytes: number) => ctx.emit({ model, phase: "verify", file: file.path, bytes, total: file.size });
  const digest = (await hashFile(path, ["sha256"], emit)).sha256;
  if (digest !== file.sha256) return "missing";
  stamp.files[file.path] = { sha256: file.sha256, size: st.size, mtimeMs: st.mtimeMs };
  return "hashed";
}

export async function readStamp(dir: string): Promise<Stamp> {
  try {
    const parsed = JSON.parse(await readFile(join(dir, STAMP), "utf8")) as Partial<Stamp>;
    if (parsed && typeof parsed.files === "object" && parsed.files !== null) return { files: parsed.files };
  } catch {
    // absent or unreadable: start afresh
  }
  return { files: {} };
}

export async function writeStamp(dir: string, stamp: Stamp): Promise<void> {
  await writeFileAtomic(join(dir, STAMP), JSON.stringify(stamp, null, 2) + "\n");
}

export async function fileSize(path: string): Promise<number | null> {
  const st = await stat(path).catch(() => null);
  return st && st.isFile() ? st.size : null;
}

/** Hashes a file with the given algorithms, reporting progress; returns hex digests by algorithm. */
export async function hashFile(path: string, algorithms: readonly string[], onBytes?: (bytes: number) => void): Promise<Record<string, Buffer | string>> {
  const hashes = algorithms.map((a) => createHash(a));
  let bytes = 0;
  let lastReport = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    for (const h of hashes) h.update(chunk);
    bytes += chunk.length;
    if (onBytes && bytes - lastReport >= 8 << 20) {
      onBytes(bytes);
      lastReport = bytes;
    }
  }
  onBytes?.(bytes);
  const out: Record<string, Buffer | string> = {};
  algorithms.forEach((a, i) => {
    const digest = (hashes[i] as ReturnType<typeof createHash>).digest();
    out[a] = a === "sha256" ? digest.toString("hex") : digest;
  });
  return out;
}

