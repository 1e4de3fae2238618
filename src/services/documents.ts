/**
 * Documents: chunk, embed, store durably, index; list, get, delete. The
 * corpus version changes with every add and delete (caches scope on it).
 */
import { randomUUID } from 'node:crypto';
import type { Engine } from '../engine/index.ts';
import { chunkText } from './chunker.ts';
import { DocumentStore, isValidDocumentId, type StoredDocument } from './document-store.ts';
import { FlatIndex, type Hit } from './vector-index.ts';

/** Options of {@link DocumentService}. */
export interface DocumentServiceOptions {
  engine: Engine;
  store: DocumentStore;
  /** Embedding model name. */
  embedder: string;
  chunkTokens: number;
  overlapTokens: number;
}

/** A document as listed (without chunk vectors). */
export interface DocumentSummary {
  id: string;
  title: string;
  created_at: string;
  chunks: number;
  characters: number;
}

/** Raised for a document id that is already taken or malformed. */
export class DocumentError extends Error {
  override name = 'DocumentError';
}

const EMBED_BATCH = 32;

export class DocumentService {
  readonly #o: DocumentServiceOptions;
  readonly #docs = new Map<string, StoredDocument>();
  readonly #index = new FlatIndex();
  #version = 0;

  constructor(options: DocumentServiceOptions) {
    this.#o = options;
  }

  /** Loads the stored documents into the index. */
  async open(): Promise<number> {
    for (const d of await this.#o.store.loadAll()) {
      this.#docs.set(d.id, d);
      this.#index.set(d.id, d.chunks.map((c) => c.embedding));
    }
    this.#version++;
    return this.#docs.size;
  }

  /** Changes whenever the corpus does. */
  get version(): number {
    return this.#version;
  }

  get count(): number {
    return this.#docs.size;
  }

  /** Chunks, embeds and durably stores a document; resolves once it is on disk. */
  async add(input: { text: string; title?: string; id?: string }): Promise<DocumentSummary> {
    const id = input.id ?? randomUUID();
    if (!isValidDocumentId(id)) throw new DocumentError(`invalid document id '${id}' (letters, digits, '-' and '_')`);
    if (this.#docs.has(id)) throw new DocumentError(`document '${id}' already exists`);
    const { engine, embedder } = this.#o;
    const texts = chunkText(input.text, {
      maxTokens: this.#o.chunkTokens,
      overlapTokens: this.#o.overlapTokens,
      countTokens: (t) => engine.countEmbeddingTokens(embedder, t),
    });
    const vectors: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += EMBED_BATCH) vectors.push(...(await engine.embed(embedder, texts.slice(i, i + EMBED_BATCH), { truncate: true })));
    const doc: StoredDocument = {
      id,
      title: input.title ?? (input.text.split('\n')[0] ?? '').slice(0, 80),
      text: input.text,
      created_at: new Date().toISOString(),
      embedder,
      chunks: texts.map((text, i) => ({ text, embedding: vectors[i]! })),
    };
    await this.#o.store.put(doc);
    this.#docs.set(id, doc);
    this.#index.set(id, vectors);
    this.#version++;
    return summarize(doc);
  }

  list(): DocumentSummary[] {
    return [...this.#docs.values()].map(summarize);
  }

  get(id: string): StoredDocument | undefined {
    return this.#docs.get(id);
  }

  async delete(id: string): Promise<boolean> {
    if (!this.#docs.has(id)) return false;
    await this.#o.store.delete(id);
    this.#docs.delete(id);
    this.#index.delete(id);
    this.#version++;
    return true;
  }

  /** The `k` chunks nearest to a query embedding, with their text and title. */
  search(query: Float32Array, k: number): (Hit & { title: string; text: string })[] {
    return this.#index.search(query, k).map((h) => {
      const d = this.#docs.get(h.docId)!;
      return { ...h, title: d.title, text: d.chunks[h.chunk]!.text };
    });
  }
}

function summarize(d: StoredDocument): DocumentSummary {
  return { id: d.id, title: d.title, created_at: d.created_at, chunks: d.chunks.length, characters: d.text.length };
}
