/**
 * The one way Candela replaces a file: write a temp file beside it, fsync
 * it, rename it over the target, fsync the directory. After a crash the
 * target is either the old file or the new one, whole, never a torn mix, and
 * a write that resolved survives power loss. Every writer in the project
 * (documents, API keys, model files and stamps, markers) goes through here.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/** Options of {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** File mode of the new file (e.g. 0o600 for secrets); default 0o644 less the umask. */
  mode?: number;
}

/** A temp path in `target`'s directory (same file system, so the rename is atomic), hidden and unique. */
export function tempPathFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
}

/** fsyncs a directory, so a rename or unlink in it is durable. */
export async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/**
 * Moves a fully written temp file over `target` durably: fsync the file,
 * rename, fsync the directory. On failure the temp file is removed.
 */
export async function commitFile(tmp: string, target: string): Promise<void> {
  try {
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(path.dirname(target));
}

/** Replaces `target` with `data` atomically and durably (creates the directory if needed). */
export async function writeFileAtomic(target: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  await mkdir(path.dirname(target), { recursive: true });
  const tmp = tempPathFor(target);
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, 'wx', options.mode ?? 0o644);
    await fh.writeFile(data);
    // open()'s mode is masked by the umask; an explicit mode is meant exactly.
    if (options.mode !== undefined) await fh.chmod(options.mode);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, target);
  } catch (err) {
    await fh?.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(path.dirname(target));
}
