/**
 * The file document store: one JSON file per document (text, chunks, chunk
 * vectors) in `<data dir>/documents`, written atomically (temp file, fsync,
 * rename, fsync of the directory), so a document whose write was
 * acknowledged survives a crash or `kill -9`, and a torn write never
 * replaces a good file. One process owns the directory.
 */
import { access, mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { syncDir, writeFileAtomic } from '../util/atomic-write.ts';
import { decodeDocument, encodeDocument, isValidDocumentId, type DocumentChangeListener, type DocumentStore, type StoredDocument } from './document-store.ts';

export class FileDocumentStore implements DocumentStore {
  readonly backend = 'file' as const;
  readonly revision = undefined;
  readonly dir: string;
  readonly #dataDir: string;
  #listener: DocumentChangeListener = () => {};
  /** Ids being written, so two concurrent `ifAbsent` puts of one id cannot both win. */
  readonly #writing = new Set<string>();

  constructor(dataDir: string) {
    this.#dataDir = dataDir;
    this.dir = path.join(dataDir, 'documents');
  }

  async open(listener: DocumentChangeListener): Promise<void> {
    const docs = await this.loadAll();
    this.#listener = listener;
    listener({ op: 'reset', docs });
  }

  async put(doc: StoredDocument, options: { ifAbsent?: boolean } = {}): Promise<boolean> {
    if (!isValidDocumentId(doc.id)) throw new Error(`invalid document id '${doc.id}'`);
    if (this.#writing.has(doc.id)) return false;
    const file = path.join(this.dir, `${doc.id}.json`);
    this.#writing.add(doc.id);
    try {
      if (options.ifAbsent && (await exists(file))) return false;
      await mkdir(this.dir, { recursive: true });
      await writeFileAtomic(file, encodeDocument(doc));
    } finally {
      this.#writing.delete(doc.id);
    }
    this.#listener({ op: 'put', doc });
    return true;
  }

  async delete(id: string): Promise<boolean> {
    if (!isValidDocumentId(id)) return false;
    try {
      await unlink(path.join(this.dir, `${id}.json`));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    await syncDir(this.dir);
    this.#listener({ op: 'delete', id });
    return true;
  }

  /** Every stored document (leftover temp files from a crash are removed). */
  async loadAll(): Promise<StoredDocument[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const docs: StoredDocument[] = [];
    for (const name of names.sort()) {
      const p = path.join(this.dir, name);
      if (name.endsWith('.tmp')) {
        await unlink(p).catch(() => undefined);
        continue;
      }
      if (name.endsWith('.json')) docs.push(decodeDocument(await readFile(p, 'utf8')));
    }
    return docs;
  }

  hasMarker(name: string): Promise<boolean> {
    return exists(this.#marker(name));
  }

  setMarker(name: string): Promise<void> {
    return writeFileAtomic(this.#marker(name), new Date().toISOString());
  }

  /** Markers sit in the data directory as hidden files (`.demo-corpus-ingested`, as before stores were pluggable). */
  #marker(name: string): string {
    return path.join(this.#dataDir, `.${name.replace(/[^A-Za-z0-9_-]/g, '-')}`);
  }

  close(): Promise<void> {
    this.#listener = () => {};
    return Promise.resolve();
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}
