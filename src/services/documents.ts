/**
 * Documents: chunk, embed, store durably, index; list, get, delete. The
 * corpus version is a fingerprint of the documents (ids, texts, embedder):
 * it changes with every add and delete, and two replicas holding the same
 * documents agree on it, so caches can scope on it and share entries.
 *
 * Documents stored with another embedder than the current one (the
 * retrieval embedder changed) are re-embedded by a background job, one
 * document at a time; until its turn, a document keeps its old vectors in
 * an index of their own, searched with a query embedded by that old model
 * when it is loaded, so no vector spaces are ever mixed.
 */
import { createHash, randomUUID } from 'node:crypto';
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
  /** Called after the corpus changed, with the version it had before. */
  onChange?: (previousVersion: string, version: string) => void;
  /** Text put before a query (never before passages) when embedding it for retrieval: the embedder's instruction. */
  queryInstruction?: string | undefined;
  /** Whether a model is loaded and ready: documents with old vectors are searched only through their own embedder. */
  isReady?: (model: string) => boolean;
  /** Progress of the re-embedding job, after every document and at the end; errors name the document. */
  onReembed?: (progress: ReembedProgress, failure?: { id: string; error: unknown }) => void;
}

/** Where the re-embedding of documents stored with another embedder stands. */
export interface ReembedProgress {
  /** The embedder documents are moved to. */
  embedder: string;
  /** Documents the job started with, done so far (re-embedded, or deleted meanwhile), failed. */
  total: number;
  done: number;
  failed: number;
  /** Documents still holding vectors of another embedder. */
  pending: number;
  running: boolean;
}

/** A search hit with its chunk's text and its document's title. */
export type DocumentHit = Hit & { title: string; text: string };

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
  /** XOR of every document's digest: order-free, updated in O(1) per change. */
  readonly #fingerprint = Buffer.alloc(16);
  /** Vectors of documents stored with another embedder, by that embedder, until they are re-embedded. */
  readonly #legacy = new Map<string, FlatIndex>();
  /** Re-embeddings in flight and deletions in flight, by document id (so neither undoes the other). */
  readonly #reembedding = new Map<string, Promise<void>>();
  readonly #deleting = new Set<string>();
  #progress: ReembedProgress | undefined;
  #job: Promise<ReembedProgress> | undefined;

  constructor(options: DocumentServiceOptions) {
    this.#o = options;
  }

  /** Loads the stored documents into the index. */
  async open(): Promise<number> {
    for (const d of await this.#o.store.loadAll()) {
      this.#docs.set(d.id, d);
      this.#indexFor(d.embedder).set(d.id, d.chunks.map((c) => c.embedding));
      this.#toggle(d);
    }
    return this.#docs.size;
  }

  /** The index holding vectors of `embedder`: the main one for the current embedder. */
  #indexFor(embedder: string): FlatIndex {
    if (embedder === this.#o.embedder) return this.#index;
    let index = this.#legacy.get(embedder);
    if (!index) this.#legacy.set(embedder, (index = new FlatIndex()));
    return index;
  }

  /** The retrieval embedder's name. */
  get embedder(): string {
    return this.#o.embedder;
  }

  #toggle(d: StoredDocument): void {
    const digest = createHash('sha256').update(`${d.id}\0${d.embedder}\0${d.text}`).digest();
    for (let i = 0; i < this.#fingerprint.length; i++) this.#fingerprint[i]! ^= digest[i]!;
  }

  #changed(update: () => void): void {
    const before = this.version;
    update();
    this.#o.onChange?.(before, this.version);
  }

  /** The corpus fingerprint (hex); changes whenever the corpus does. */
  get version(): string {
    return this.#fingerprint.toString('hex');
  }

  get count(): number {
    return this.#docs.size;
  }

  /** Chunks, embeds and durably stores a document; resolves once it is on disk. */
  async add(input: { text: string; title?: string; id?: string }): Promise<DocumentSummary> {
    const id = input.id ?? randomUUID();
    if (!isValidDocumentId(id)) throw new DocumentError(`invalid document id '${id}' (letters, digits, '-' and '_')`);
    if (this.#docs.has(id)) throw new DocumentError(`document '${id}' already exists`);
    const { embedder } = this.#o;
    const { texts, vectors } = await this.#embedPassages(input.text);
    const doc: StoredDocument = {
      id,
      title: input.title ?? (input.text.split('\n')[0] ?? '').slice(0, 80),
      text: input.text,
      created_at: new Date().toISOString(),
      embedder,
      chunks: texts.map((text, i) => ({ text, embedding: vectors[i]! })),
    };
    await this.#o.store.put(doc);
    this.#changed(() => {
      this.#docs.set(id, doc);
      this.#index.set(id, vectors);
      this.#toggle(doc);
    });
    return summarize(doc);
  }

  list(): DocumentSummary[] {
    return [...this.#docs.values()].map(summarize);
  }

  get(id: string): StoredDocument | undefined {
    return this.#docs.get(id);
  }

  async delete(id: string): Promise<boolean> {
    this.#deleting.add(id);
    try {
      await this.#reembedding.get(id)?.catch(() => undefined);
      const doc = this.#docs.get(id);
      if (!doc) return false;
      await this.#o.store.delete(id);
      this.#changed(() => {
        this.#docs.delete(id);
        this.#indexFor(doc.embedder).delete(id);
        this.#toggle(doc);
      });
      return true;
    } finally {
      this.#deleting.delete(id);
    }
  }

  /** The `k` chunks nearest to a query embedding (of the current embedder), with their text and title. */
  search(query: Float32Array, k: number): DocumentHit[] {
    return this.#withText(this.#index.search(query, k));
  }

  #withText(hits: Hit[]): DocumentHit[] {
    return hits.map((h) => {
      const d = this.#docs.get(h.docId)!;
      return { ...h, title: d.title, text: d.chunks[h.chunk]!.text };
    });
  }

  /** A query's embedding for retrieval: the embedder's query instruction before it (passages take none). */
  async embedQuery(query: string): Promise<Float32Array> {
    const [q] = await this.#o.engine.embed(this.#o.embedder, [(this.#o.queryInstruction ?? '') + query], { truncate: true });
    return q!;
  }

  /**
   * The `k` chunks nearest to a query: documents of the current embedder
   * through {@link embedQuery}; documents still awaiting re-embedding
   * through their own (loaded) embedder, merged by score. `known` is the
   * query's plain embedding by some model, reused when it is the one needed.
   */
  async searchText(query: string, k: number, known?: { model: string; embedding: Float32Array }): Promise<DocumentHit[]> {
    const reuse = known && known.model === this.#o.embedder && !this.#o.queryInstruction;
    let hits = this.#index.search(reuse ? known.embedding : await this.embedQuery(query), k);
    for (const [name, index] of this.#legacy) {
      if (index.size === 0 || !this.#o.isReady?.(name)) continue;
      const q = known?.model === name ? known.embedding : (await this.#o.engine.embed(name, [query], { truncate: true }))[0]!;
      hits = [...hits, ...index.search(q, k)].sort((a, b) => b.score - a.score).slice(0, k);
    }
    return this.#withText(hits);
  }

  /** Chunks a text in embedder tokens and embeds the chunks as passages. */
  async #embedPassages(text: string): Promise<{ texts: string[]; vectors: Float32Array[] }> {
    const { engine, embedder } = this.#o;
    const texts = chunkText(text, {
      maxTokens: this.#o.chunkTokens,
      overlapTokens: this.#o.overlapTokens,
      countTokens: (t) => engine.countEmbeddingTokens(embedder, t),
    });
    const vectors: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += EMBED_BATCH) vectors.push(...(await engine.embed(embedder, texts.slice(i, i + EMBED_BATCH), { truncate: true })));
    return { texts, vectors };
  }

  /** Where the re-embedding job stands (undefined before it first ran). */
  get reembedProgress(): ReembedProgress | undefined {
    return this.#progress && { ...this.#progress, pending: this.#pendingCount() };
  }

  #pendingCount(): number {
    let n = 0;
    for (const d of this.#docs.values()) if (d.embedder !== this.#o.embedder) n++;
    return n;
  }

  /**
   * Re-embeds, one at a time, every document stored with another embedder;
   * each switches to its new vectors (written durably first) as soon as it
   * is done. Resolves with the final progress; a second call joins the job.
   */
  reembedStale(): Promise<ReembedProgress> {
    if (this.#job) return this.#job;
    const { embedder } = this.#o;
    const stale = [...this.#docs.values()].filter((d) => d.embedder !== embedder).map((d) => d.id);
    const progress: ReembedProgress = { embedder, total: stale.length, done: 0, failed: 0, pending: stale.length, running: stale.length > 0 };
    this.#progress = progress;
    const report = (failure?: { id: string; error: unknown }): void => {
      progress.pending = this.#pendingCount();
      this.#o.onReembed?.({ ...progress }, failure);
    };
    const job = (async () => {
      for (const id of stale) {
        const old = this.#docs.get(id);
        if (old && old.embedder !== embedder && !this.#deleting.has(id)) {
          const work = this.#reembedOne(old);
          this.#reembedding.set(id, work);
          try {
            await work;
          } catch (error) {
            progress.failed++;
            report({ id, error });
            continue;
          } finally {
            this.#reembedding.delete(id);
          }
        }
        progress.done++;
        report();
      }
      progress.running = false;
      if (stale.length > 0) report();
      return { ...progress, pending: this.#pendingCount() };
    })();
    this.#job = job;
    void job.finally(() => {
      if (this.#job === job) this.#job = undefined;
    });
    return job;
  }

  async #reembedOne(old: StoredDocument): Promise<void> {
    const { texts, vectors } = await this.#embedPassages(old.text);
    // Deleted (or being deleted) meanwhile: writing it back would undo the delete.
    if (this.#docs.get(old.id) !== old || this.#deleting.has(old.id)) return;
    const doc: StoredDocument = { ...old, embedder: this.#o.embedder, chunks: texts.map((text, i) => ({ text, embedding: vectors[i]! })) };
    await this.#o.store.put(doc);
    this.#changed(() => {
      this.#toggle(old);
      this.#indexFor(old.embedder).delete(old.id);
      this.#docs.set(doc.id, doc);
      this.#index.set(doc.id, vectors);
      this.#toggle(doc);
    });
  }
}

function summarize(d: StoredDocument): DocumentSummary {
  return { id: d.id, title: d.title, created_at: d.created_at, chunks: d.chunks.length, characters: d.text.length };
}
