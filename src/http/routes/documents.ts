/**
 * Documents: POST /v1/documents (one `{text, title?, id?}` or
 * `{documents: [...]}`), GET /v1/documents, GET and DELETE
 * /v1/documents/:id. A 201 means the document is in the store of record
 * (on disk, or in Redis when one is configured); answers carry the corpus
 * version (a fingerprint of the documents) and, with Redis, the corpus
 * revision this replica has caught up to.
 */
import { Router } from 'express';
import { z } from 'zod';
import { documentIdFromFilename, DocumentStoreUnavailableError } from '../../services/document-store.ts';
import { DocumentError, type DocumentService } from '../../services/documents.ts';
import { HttpError } from '../errors.ts';
import { readTextUpload } from '../multipart.ts';
import { trimmedText, validate } from '../validate.ts';

/** Most documents one request may add. */
export const MAX_DOCUMENTS_PER_REQUEST = 100;

const Doc = z.object({
  text: trimmedText(1, undefined, 'must not be empty'),
  title: z.string().max(500).optional(),
  id: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'letters, digits, - and _ only (1-128)').optional(),
});
export const AddDocumentsBody = z.union([Doc, z.object({ documents: z.array(Doc).min(1).meta({ maxItems: MAX_DOCUMENTS_PER_REQUEST }) })]);

export function createDocumentRoutes(docs: () => DocumentService | undefined, options: { uploadLimitBytes: number }): Router {
  const r = Router();
  const service = (): DocumentService => {
    const d = docs();
    if (!d) throw new HttpError(503, 'documents_unavailable', 'documents need an embedding model, and none is ready');
    return d;
  };
  r.post('/v1/documents', async (req, res) => {
    let list: { text: string; title?: string | undefined; id?: string | undefined }[];
    if (req.is('multipart/form-data')) {
      // Uploads: one document per .txt/.md file, titled and named after the file.
      const { files } = await readTextUpload(req, { limitBytes: options.uploadLimitBytes, maxFiles: MAX_DOCUMENTS_PER_REQUEST });
      if (files.length === 0) throw new HttpError(422, 'invalid_request', 'the upload holds no file', { param: 'file' });
      list = files.map((f) => validate(Doc, { text: f.text, title: f.filename, id: documentIdFromFilename(f.filename) }));
    } else {
      const body = validate(AddDocumentsBody, req.body);
      list = 'documents' in body ? body.documents : [body];
    }
    if (list.length > MAX_DOCUMENTS_PER_REQUEST) {
      throw new HttpError(413, 'too_many_items', `at most ${MAX_DOCUMENTS_PER_REQUEST} documents per request`, { param: 'documents' });
    }
    const s = service();
    const added = [];
    for (const d of list) {
      try {
        added.push(await s.add(d));
      } catch (e) {
        if (e instanceof DocumentError) throw new HttpError(409, 'document_conflict', e.message, { param: 'id' });
        if (e instanceof DocumentStoreUnavailableError) {
          const stored = added.length > 0 ? ` (${added.length} earlier document(s) of this request were stored: ${added.map((a) => a.id).join(', ')})` : '';
          throw new HttpError(503, 'document_store_unavailable', `${e.message}${stored}`, { retryAfter: e.retryAfterS, cause: e });
        }
        throw e;
      }
    }
    res.status(201).json({ object: 'list', data: added, ...corpus(s) });
  });
  r.get('/v1/documents', (_req, res) => {
    const s = service();
    res.json({ object: 'list', data: s.list(), ...corpus(s), embedder: s.embedder, reembedding: s.reembedProgress ?? null });
  });
  r.get('/v1/documents/:id', (req, res) => {
    const d = service().get(req.params.id);
    if (!d) throw new HttpError(404, 'document_not_found', `no document '${req.params.id}'`);
    res.json({ id: d.id, title: d.title, text: d.text, created_at: d.created_at, chunks: d.chunks.map((c) => c.text) });
  });
  r.delete('/v1/documents/:id', async (req, res) => {
    const s = service();
    let deleted: boolean;
    try {
      deleted = await s.delete(req.params.id);
    } catch (e) {
      if (e instanceof DocumentStoreUnavailableError) throw new HttpError(503, 'document_store_unavailable', e.message, { retryAfter: e.retryAfterS, cause: e });
      throw e;
    }
    if (!deleted) throw new HttpError(404, 'document_not_found', `no document '${req.params.id}'`);
    res.json({ id: req.params.id, deleted: true, ...corpus(s) });
  });
  return r;
}

/** The corpus version (fingerprint) and, with a shared store, the revision this replica has caught up to. */
function corpus(s: DocumentService): { corpus_version: string; corpus_revision?: number } {
  const revision = s.revision;
  return revision === undefined ? { corpus_version: s.version } : { corpus_version: s.version, corpus_revision: revision };
}
