/**
 * The conversion step of `models pull`: reads a model file in another format
 * (an ONNX export) out of its verified archive, checks it against its pinned
 * sha256, converts it with Candela's own code (`onnx-to-bert.ts`), checks
 * every output against its pinned sha256 and writes it atomically.
 */
import { createHash } from "node:crypto";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.ts";
import { archiveMember } from "./archive.ts";
import type { OnnxBertConversion } from "./manifest.ts";
import { convertOnnxBert } from "./onnx-to-bert.ts";
import type { PullContext } from "./pull-context.ts";
import { ChecksumError, PullError } from "./pull-errors.ts";
import type { Stamp } from "./verify.ts";

/** One archive member read whole into memory, verified against its pinned size and sha256. */
async function readMember(ctx: PullContext, model: string, archive: string, ref: OnnxBertConversion["input"]): Promise<Buffer> {
  // One buffer of the pinned size, filled in place: the member is never held twice.
  const out = Buffer.allocUnsafe(ref.size);
  const hash = createHash("sha256");
  let size = 0;
  let lastReport = 0;
  for await (const chunk of archiveMember(archive, ref.member)) {
    if (size + chunk.length > ref.size) throw new ChecksumError("size", ref.member, String(ref.size), `more than ${ref.size}`);
    out.set(chunk, size);
    hash.update(chunk);
    size += chunk.length;
    if (size - lastReport >= 8 << 20) {
      lastReport = size;
      ctx.emit({ model, phase: "extract", file: ref.member, bytes: size, total: ref.size });
    }
  }
  ctx.emit({ model, phase: "extract", file: ref.member, bytes: size, total: ref.size });
  if (size !== ref.size) throw new ChecksumError("size", ref.member, String(ref.size), String(size));
  const digest = hash.digest("hex");
  if (digest !== ref.sha256) throw new ChecksumError("sha256", ref.member, ref.sha256, digest);
  return out;
}

/**
 * Converts the model file of `conversion` (in the archive at `archive`) and
 * writes every output into `dir`, recording each in `stamp`.
 */
export async function runConversion(ctx: PullContext, model: string, dir: string, conversion: OnnxBertConversion, archive: string, stamp: Stamp): Promise<void> {
  const input = await readMember(ctx, model, archive, conversion.input);
  const main = conversion.files[0];
  ctx.emit({ model, phase: "convert", file: main?.path, bytes: 0, total: main?.size ?? 0 });
  let files: Map<string, Buffer>;
  try {
    files = convertOnnxBert(input, conversion.settings).files;
  } catch (err) {
    throw new PullError(`${model}: converting ${conversion.input.member} failed: ${(err as Error).message}`, { cause: err });
  }
  // Everything is checked before anything is written: a converter that changed its output leaves the old files alone.
  for (const pinned of conversion.files) {
    const bytes = files.get(pinned.path);
    if (!bytes) throw new PullError(`${model}: the converter made no ${pinned.path}`);
    if (bytes.length !== pinned.size) throw new ChecksumError("size", pinned.path, String(pinned.size), String(bytes.length));
    const digest = createHash("sha256").update(bytes).digest("hex");
    if (digest !== pinned.sha256) throw new ChecksumError("sha256", pinned.path, pinned.sha256, digest);
  }
  for (const pinned of conversion.files) {
    const target = join(dir, pinned.path);
    await writeFileAtomic(target, files.get(pinned.path)!);
    const st = await stat(target);
    stamp.files[pinned.path] = { sha256: pinned.sha256, size: st.size, mtimeMs: st.mtimeMs };
  }
  ctx.emit({ model, phase: "convert", file: main?.path, bytes: main?.size ?? 0, total: main?.size ?? 0 });
}
