/**
 * Documents: chunk, embed, store durably, index; list, get, delete. The
 * corpus version is a fingerprint of the documents (ids, texts, embedder):
 * it changes with every add and delete, and two replicas holding the same
 * documents agree on it, so caches can scope on it and share entries.
 *
 * The in-memory corpus changes only through the store's change reports
 * (see document-store.ts): this replica's own writes and, with a shared
 * store, every other replica's, in the order the store of record took them.
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
import { isValidDocumentId, sameDocument, type DocumentChange, type DocumentStore, type StoredDocument } from './document-store.ts';
import type { RequestContext } from './inference.ts';
import { ChunkIndex, type ChunkHit } from './retrieval/chunk-index.ts';

/** Options of {@link DocumentService}. */
export interface DocumentServiceOptions {
  /** What embeds the chunks: the server's inference service (admission), or an engine. */
  engine: Pick<Engine, 'countEmbeddingTokens'> & {
    embed(model: string, texts: string[], options?: { truncate?: boolean; signal?: AbortSignal | undefined }, ctx?: RequestContext): Promise<Float32Array[]>;
  };
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
  /** Vectors of documents stored with another embedder, by that embedder, until they are re-embedded. */
  readonly #legacy = new Map<string, ChunkIndex>();
  /** Re-embeddings in flight and deletions in flight, by document id (so neither undoes the other). */
  readonly #reembedding = new Map<string, Promise<void>>();
  readonly #deleting = new Set<string>();
  #progress: ReembedProgress | undefined;
  #job: Promise<ReembedProgress> | undefined;

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
      if (old) {
        this.#toggle(old);
        if (old.embedder !== d.embedder) this.#indexFor(old.embedder).delete(old.id);
      }
      this.#docs.set(d.id, d);
      this.#indexFor(d.embedder).set(d.id, d.chunks);
      this.#toggle(d);
    };
    const remove = (id: string) => {
      const old = this.#docs.get(id);
      if (!old) return;
      this.#docs.delete(id);
      this.#indexFor(old.embedder).delete(id);
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

  /** The index holding chunks embedded by `embedder`: the main one for the current embedder. */
  #indexFor(embedder: string): ChunkIndex {
    if (embedder === this.#o.embedder) return this.#index;
    let index = this.#legacy.get(embedder);
    if (!index) this.#legacy.set(embedder, (index = new ChunkIndex()));
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
    this.#deleting.add(id);
    try {
      await this.#reembedding.get(id)?.catch(() => undefined);
      if (!this.#docs.has(id)) return false;
      // The store reports the delete back (see #apply).
      return await this.#o.store.delete(id);
    } finally {
      this.#deleting.delete(id);
    }
  }

  /** The current embedder's chunks: dense and BM25 indexes (searched through {@link searchDense} and {@link searchLexical}). */
  get chunks(): ChunkIndex {
    return this.#index;
  }

  /**
   * The `k` chunks nearest to a query: chunks of the current embedder by
   * `vector` (default: {@link embedQuery}); chunks of documents still awaiting
   * re-embedding by a query embedded with their own embedder, when it is
   * loaded; merged by score (no vector spaces mixed within one index).
   */
  async searchDense(query: string, k: number, options: { vector?: Float32Array | undefined; signal?: AbortSignal | undefined; ctx?: RequestContext | undefined } = {}): Promise<ChunkHit[]> {
    let hits = await this.#index.searchDense(options.vector ?? (await this.embedQuery(query, options.signal, options.ctx)), k);
    for (const [name, index] of this.#legacy) {
      if (index.size === 0 || !this.#o.isReady?.(name)) continue;
      const [q] = await this.#o.engine.embed(name, [query], { truncate: true, signal: options.signal }, options.ctx);
      hits = [...hits, ...(await index.searchDense(q!, k))].sort((a, b) => b.score - a.score).slice(0, k);
    }
    return hits;
  }

  /** The `k` best BM25 matches over every document, those awaiting re-embedding included. */
  searchLexical(query: string, k: number): ChunkHit[] {
    let hits = this.#index.searchText(query, k);
    for (const index of this.#legacy.values()) if (index.size > 0) hits = [...hits, ...index.searchText(query, k)].sort((a, b) => b.score - a.score).slice(0, k);
    return hits;
  }

  /** A query's embedding for retrieval: the embedder's query instruction before it (passages take none). */
  async embedQuery(query: string, signal?: AbortSignal, ctx?: RequestContext): Promise<Float32Array> {
    const [q] = await this.#o.engine.embed(this.#o.embedder, [(this.#o.queryInstruction ?? '') + query], { truncate: true, signal }, ctx);
    return q!;
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
    // An upsert: the store reports it back (see #apply), which moves the document to the current index.
    await this.#o.store.put(doc);
  }
}

function summarize(d: StoredDocument): DocumentSummary {
  return { id: d.id, title: d.title, created_at: d.created_at, chunks: d.chunks.length, characters: d.text.length };
}
