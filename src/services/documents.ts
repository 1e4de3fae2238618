/**
 * Documents: chunk, embed, store durably, index; list, get, delete. The
 * corpus version is a fingerprint of the documents (ids, texts, embedder):
 * it changes with every add and delete, and two replicas holding the same
 * documents agree on it, so caches can scope on it and share entries.
 *
 * The in-memory corpus changes only through the store's change reports
 * (see document-store.ts): this replica's own writes and, with a shared
 * store, every other replica's, in the order the store of record took them.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Engine } from '../engine/index.ts';
import { chunkText } from './chunker.ts';
import { isValidDocumentId, sameDocument, type DocumentChange, type DocumentStore, type StoredDocument } from './document-store.ts';
import { ChunkIndex } from './retrieval/chunk-index.ts';

/** Options of {@link DocumentService}. */
export interface DocumentServiceOptions {
  /** What embeds the chunks: the server's inference service (admission), or an engine. */
  engine: Pick<Engine, 'embed' | 'countEmbeddingTokens'>;
  store: DocumentStore;
  /** Embedding model name. */
  embedder: string;
  chunkTokens: number;
  overlapTokens: number;
  /** Called after the corpus changed, with the version it had before. */
  onChange?: (previousVersion: string, version: string) => void;
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
  readonly #index = new ChunkIndex();
  /** XOR of every document's digest: order-free, updated in O(1) per change. */
  readonly #fingerprint = Buffer.alloc(16);

  constructor(options: DocumentServiceOptions) {
    this.#o = options;
  }

  /** Loads the stored documents into the index and follows the store's changes. */
  async open(): Promise<number> {
    await this.#o.store.open((change) => this.#apply(change));
    return this.#docs.size;
  }

  /** Applies one change the store reported; idempotent (a replica may hear of its own write twice). */
  #apply(change: DocumentChange): void {
    const upsert = (d: StoredDocument) => {
      const old = this.#docs.get(d.id);
      if (old && sameDocument(old, d)) return;
      if (old) this.#toggle(old);
      this.#docs.set(d.id, d);
      this.#index.set(d.id, d.chunks);
      this.#toggle(d);
    };
    const remove = (id: string) => {
      const old = this.#docs.get(id);
      if (!old) return;
      this.#docs.delete(id);
      this.#index.delete(id);
      this.#toggle(old);
    };
    this.#changed(() => {
      if (change.op === 'put') upsert(change.doc);
      else if (change.op === 'delete') remove(change.id);
      else {
        const keep = new Set(change.docs.map((d) => d.id));
        for (const id of [...this.#docs.keys()]) if (!keep.has(id)) remove(id);
        for (const d of change.docs) upsert(d);
      }
    });
  }

  #toggle(d: StoredDocument): void {
    const digest = createHash('sha256').update(`${d.id}\0${d.embedder}\0${d.text}`).digest();
    for (let i = 0; i < this.#fingerprint.length; i++) this.#fingerprint[i]! ^= digest[i]!;
  }

  #changed(update: () => void): void {
    const before = this.version;
    update();
    if (this.version !== before) this.#o.onChange?.(before, this.version);
  }

  /** The corpus fingerprint (hex); changes whenever the corpus does. */
  get version(): string {
    return this.#fingerprint.toString('hex');
  }

  /**
   * The store of record's revision this replica has caught up to (a count of
   * adds and deletes; Redis store only): equal on replicas that have caught up.
   */
  get revision(): number | undefined {
    return this.#o.store.revision;
  }

  get count(): number {
    return this.#docs.size;
  }

  /** Chunks, embeds and durably stores a document; resolves once the store of record has it. */
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
    // The store reports the write back (see #apply); a peer may have taken the id meanwhile.
    if (!(await this.#o.store.put(doc, { ifAbsent: true }))) throw new DocumentError(`document '${id}' already exists`);
    return summarize(doc);
  }

  list(): DocumentSummary[] {
    return [...this.#docs.values()].map(summarize);
  }

  get(id: string): StoredDocument | undefined {
    return this.#docs.get(id);
  }

  async delete(id: string): Promise<boolean> {
    const doc = this.#docs.get(id);
    if (!doc) return false;
    return this.#o.store.delete(id);
  }

  /** The chunks' dense and BM25 indexes (searched by the retriever, services/retrieval/retriever.ts). */
  get chunks(): ChunkIndex {
    return this.#index;
  }
}

function summarize(d: StoredDocument): DocumentSummary {
  return { id: d.id, title: d.title, created_at: d.created_at, chunks: d.chunks.length, characters: d.text.length };
}
