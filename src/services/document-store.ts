/**
 * Durable document storage in the data directory: one JSON file per
 * document (text, chunks, chunk embeddings), written atomically (temp file,
 * fsync, rename, fsync of the directory), so a document whose write was
 * acknowledged survives a crash or `kill -9`, and a torn write never
 * replaces a good file.
 */
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { syncDir, writeFileAtomic } from '../util/atomic-write.ts';

/** A stored document. */
export interface StoredDocument {
  id: string;
  title: string;
  text: string;
  created_at: string;
  /** Embedder that produced the vectors (a different one needs re-embedding). */
  embedder: string;
  chunks: { text: string; embedding: Float32Array }[];
}

interface DocumentFile extends Omit<StoredDocument, 'chunks'> {
  chunks: { text: string; embedding: string }[];
}

const ID = /^[A-Za-z0-9_-]{1,128}$/;

/** A document id from a file name: the name without extension, slugged. */
export function documentIdFromFilename(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? name;
  return (
    base
      .replace(/\.[^.]+$/, '')
      .replace(/[^A-Za-z0-9_-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 100) || 'document'
  );
}

/** True when `id` can name a document (and a file). */
export function isValidDocumentId(id: string): boolean {
  return ID.test(id);
}

export class DocumentStore {
  readonly dir: string;

  constructor(dataDir: string) {
    this.dir = path.join(dataDir, 'documents');
  }

  /** Writes a document durably; resolves only once it is on disk. */
  async put(doc: StoredDocument): Promise<void> {
    if (!isValidDocumentId(doc.id)) throw new Error(`invalid document id '${doc.id}'`);
    await mkdir(this.dir, { recursive: true });
    const file: DocumentFile = {
      ...doc,
      chunks: doc.chunks.map((c) => ({ text: c.text, embedding: Buffer.from(c.embedding.buffer, c.embedding.byteOffset, c.embedding.byteLength).toString('base64') })),
    };
    await writeFileAtomic(path.join(this.dir, `${doc.id}.json`), JSON.stringify(file));
  }

  /** Deletes a document; false when it did not exist. */
  async delete(id: string): Promise<boolean> {
    if (!isValidDocumentId(id)) return false;
    try {
      await unlink(path.join(this.dir, `${id}.json`));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    await syncDir(this.dir);
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
    for (const name of names) {
      const p = path.join(this.dir, name);
      if (name.endsWith('.tmp')) {
        await unlink(p).catch(() => undefined);
        continue;
      }
      if (!name.endsWith('.json')) continue;
      const f = JSON.parse(await readFile(p, 'utf8')) as DocumentFile;
      docs.push({
        ...f,
        chunks: f.chunks.map((c) => {
          // Copied into a fresh (4-byte aligned) buffer: pooled Buffers may start unaligned.
          const bytes = new Uint8Array(Buffer.from(c.embedding, 'base64'));
          return { text: c.text, embedding: new Float32Array(bytes.buffer) };
        }),
      });
    }
    return docs;
  }
}
