/**
 * Reads one member out of a downloaded archive as a byte stream, with
 * maintained libraries: yauzl for zip (wheels and jars: central directory, zip64,
 * size checks) and tar-stream for gzipped tar (npm tarballs: ustar prefixes,
 * pax and GNU long names).
 */
import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import * as tar from "tar-stream";
import * as yauzl from "yauzl";
import { PullError } from "./pull-errors.ts";

/** The uncompressed bytes of `member` of the archive at `path` (.whl/.jar/.zip or .tgz/.tar.gz). */
export function archiveMember(path: string, member: string): AsyncIterable<Buffer> {
  return /\.(whl|jar|zip)$/.test(path) ? zipMember(path, member) : tarGzMember(path, member);
}

async function* zipMember(path: string, member: string): AsyncGenerator<Buffer> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true, autoClose: false }, (err, z) => (err ? reject(malformed(path, err)) : resolve(z)));
  });
  try {
    const entry = await new Promise<yauzl.Entry | undefined>((resolve, reject) => {
      zip.on("entry", (e: yauzl.Entry) => (e.fileName === member ? resolve(e) : zip.readEntry()));
      zip.once("end", () => resolve(undefined));
      zip.once("error", (err: Error) => reject(malformed(path, err)));
      zip.readEntry();
    });
    if (!entry) throw new PullError(`${path}: no member ${member}`);
    const stream = await new Promise<Readable>((resolve, reject) => {
      zip.openReadStream(entry, (err, s) => (err ? reject(malformed(path, err)) : resolve(s)));
    });
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) yield chunk;
    } catch (err) {
      throw malformed(path, err);
    }
  } finally {
    zip.close();
  }
}

async function* tarGzMember(path: string, member: string): AsyncGenerator<Buffer> {
  const want = member.replace(/^\.\//, "");
  const extract = tar.extract();
  const feeding = pipeline(createReadStream(path), createGunzip(), extract).catch((err: unknown) => {
    extract.destroy();
    throw malformed(path, err);
  });
  let found = false;
  try {
    for await (const entry of extract) {
      const name = entry.header.name.replace(/^\.\//, "");
      if (!found && name === want && entry.header.type === "file") {
        found = true;
        for await (const chunk of entry as AsyncIterable<Buffer>) yield chunk;
        break;
      }
      entry.resume(); // skip this member's bytes
    }
  } finally {
    extract.destroy();
    if (!found) await feeding;
    else await feeding.catch(() => undefined); // stopped early on purpose
  }
  if (!found) throw new PullError(`${path}: no member ${member}`);
}

function malformed(path: string, err: unknown): PullError {
  if (err instanceof PullError) return err;
  return new PullError(`${path}: malformed archive: ${(err as Error).message}`, { cause: err });
}
