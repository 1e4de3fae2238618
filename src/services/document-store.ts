/**
 * Where documents and their chunk vectors live: the storage contract shared
 * by the file store (one process, the data directory) and the Redis store
 * (the store of record for every replica), the JSON form both write, and
 * {@link createDocumentStore}, which picks one from the configuration.
 *
 * A store reports every change to its documents (its own writes and, for a
 * shared store, other replicas' writes) through the listener given to
 * {@link DocumentStore.open}, in the order the store of record applied them;
 * the document service keeps its in-memory corpus and index from those
 * reports alone, so a replica's own writes and its peers' take one path.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { base64ToFloat32, float32ToBase64 } from '../util/vector-base64.ts';
import { FileDocumentStore } from './document-store-file.ts';
import { RedisDocumentStore } from './document-store-redis.ts';

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

/** A change to the stored documents, as the store reports it. */
export type DocumentChange =
  | { op: 'put'; doc: StoredDocument }
  | { op: 'delete'; id: string }
  /** The whole corpus, replacing what the listener holds (first load, or a replica that fell too far behind). */
  | { op: 'reset'; docs: StoredDocument[] };

/** Receives a store's changes, synchronously and in order. */
export type DocumentChangeListener = (change: DocumentChange) => void;

/** Storage of documents. */
export interface DocumentStore {
  readonly backend: 'file' | 'redis';
  /**
   * Loads every document (reported as one `reset`) and, for a shared store,
   * starts following other replicas' changes. Resolves once the corpus is in.
   */
  open(listener: DocumentChangeListener): Promise<void>;
  /**
   * Writes a document durably and reports it; resolves only once the store
   * of record has it. With `ifAbsent`, resolves false (and writes nothing)
   * when the id is taken — atomically across replicas for a shared store.
   * Throws {@link DocumentStoreUnavailableError} when the store cannot be reached.
   */
  put(doc: StoredDocument, options?: { ifAbsent?: boolean }): Promise<boolean>;
  /** Deletes a document durably and reports it; false when it did not exist. */
  delete(id: string): Promise<boolean>;
  /**
   * Count of changes the store of record has applied, as far as this replica
   * has followed them (undefined for a store without one). Equal on replicas
   * that have caught up; it only grows while the store of record lives.
   */
  readonly revision: number | undefined;
  /** Whether the one-time marker `name` was set (e.g. the demo corpus went in). */
  hasMarker(name: string): Promise<boolean>;
  setMarker(name: string): Promise<void>;
  /** Stops following; the store stays readable through what was loaded. */
  close(): Promise<void>;
}

/** The store of record cannot be reached: the write was not acknowledged (HTTP 503 with Retry-After). */
export class DocumentStoreUnavailableError extends Error {
  override name = 'DocumentStoreUnavailableError';
  /** Seconds a client should wait before retrying. */
  readonly retryAfterS: number;

  constructor(message: string, options: { retryAfterS?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.retryAfterS = options.retryAfterS ?? 2;
  }
}

/** Options of {@link createDocumentStore}. */
export interface DocumentStoreOptions {
  dataDir: string;
  /** A connected client: Redis becomes the store of record. */
  redis?: Redis | undefined;
  /** Key prefix in Redis (the `docs:` namespace is appended). */
  redisPrefix?: string;
  logger: Logger;
}

/**
 * The Redis store when a client is given, the file store in the data
 * directory otherwise. A Redis that never held documents is seeded from the
 * data directory, so a server that ran without Redis keeps its corpus.
 */
export function createDocumentStore(options: DocumentStoreOptions): DocumentStore {
  const files = new FileDocumentStore(options.dataDir);
  if (!options.redis) return files;
  return new RedisDocumentStore({ redis: options.redis, prefix: `${options.redisPrefix ?? 'candela:'}docs:`, logger: options.logger, importFrom: () => files.loadAll() });
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

interface DocumentJson extends Omit<StoredDocument, 'chunks'> {
  chunks: { text: string; embedding: string }[];
}

/** A document as the stores write it: JSON with base64 vectors. */
export function encodeDocument(doc: StoredDocument): string {
  const json: DocumentJson = { ...doc, chunks: doc.chunks.map((c) => ({ text: c.text, embedding: float32ToBase64(c.embedding) })) };
  return JSON.stringify(json);
}

/** The inverse of {@link encodeDocument}. */
export function decodeDocument(raw: string): StoredDocument {
  const f = JSON.parse(raw) as DocumentJson;
  return { ...f, chunks: f.chunks.map((c) => ({ text: c.text, embedding: base64ToFloat32(c.embedding) })) };
}

/** True when two versions of a document are the same write (same id, time, text and embedder). */
export function sameDocument(a: StoredDocument, b: StoredDocument): boolean {
  return a.id === b.id && a.created_at === b.created_at && a.embedder === b.embedder && a.text === b.text && a.chunks.length === b.chunks.length;
}
