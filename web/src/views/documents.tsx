/**
 * Documents: .txt/.md files dropped or picked are uploaded one request per
 * file (multipart, progress per file); the list shows chunk counts and the
 * corpus version, and deletes.
 */
import { useState } from 'preact/hooks';
import { getJson, request, uploadDocument } from '../api.ts';
import { ErrorNote, asApiError } from '../components/error-note.tsx';
import { bytes, count, short } from '../format.ts';
import { usePoll } from '../hooks.ts';
import type { ApiError } from '../api.ts';
import type { DocumentList } from '../types.ts';

interface Upload {
  id: number;
  name: string;
  size: number;
  sent: number;
  state: 'uploading' | 'indexing' | 'done' | 'error';
  error?: ApiError;
  chunks?: number;
}

const ACCEPTED = /\.(txt|md|markdown)$/i;
let nextId = 1;

export function DocumentsView() {
  const [list, setList] = useState<DocumentList | undefined>();
  const [error, setError] = useState<ApiError | undefined>();
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [dragging, setDragging] = useState(false);
  const { reload } = usePoll(async (signal) => {
    try {
      setList(await getJson<DocumentList>('/v1/documents', { signal }));
      setError(undefined);
    } catch (err) {
      if (!signal.aborted) setError(asApiError(err));
    }
  }, 0);

  const patch = (id: number, p: Partial<Upload>) => setUploads((all) => all.map((u) => (u.id === id ? { ...u, ...p } : u)));

  const upload = async (files: File[]) => {
    const batch = files.map((f) => {
      const u: Upload = { id: nextId++, name: f.name, size: f.size, sent: 0, state: 'uploading' };
      return { file: f, u };
    });
    setUploads((all) => [...batch.map((b) => b.u), ...all].slice(0, 30));
    // One after another: the server embeds each file before answering.
    for (const { file, u } of batch) {
      if (!ACCEPTED.test(file.name)) {
        patch(u.id, { state: 'error', error: asApiError(new Error('only .txt and .md files can be added')) });
        continue;
      }
      try {
        const res = await uploadDocument(file, (sent, total) => patch(u.id, { sent, state: sent >= total ? 'indexing' : 'uploading' }));
        patch(u.id, { state: 'done', sent: file.size, chunks: res.data.reduce((n, d) => n + d.chunks, 0) });
      } catch (err) {
        patch(u.id, { state: 'error', error: asApiError(err) });
      }
      reload();
    }
  };

  const remove = async (id: string, title: string) => {
    if (!confirm(`Delete “${title}”? Its chunks leave the index and cached answers of this corpus are dropped.`)) return;
    try {
      await request(`/v1/documents/${encodeURIComponent(id)}`, { method: 'DELETE' });
      setError(undefined);
    } catch (err) {
      setError(asApiError(err));
    }
    reload();
  };

  return (
    <section aria-labelledby="docs-title">
      <h2 id="docs-title">Documents</h2>
      <div
        class={`dropzone${dragging ? ' over' : ''}`}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          void upload([...(e.dataTransfer?.files ?? [])]);
        }}
      >
        <p>Drop .txt or .md files here, or</p>
        <label class="button">
          Choose files…
          <input
            type="file"
            multiple
            accept=".txt,.md,.markdown,text/plain,text/markdown"
            class="visually-hidden"
            data-testid="file-input"
            onChange={(e) => {
              const files = [...(e.currentTarget.files ?? [])];
              e.currentTarget.value = '';
              void upload(files);
            }}
          />
        </label>
        <p class="small muted">Each file becomes one document, titled after the file; it is chunked, embedded and stored before it counts.</p>
      </div>
      {uploads.length > 0 && (
        <ul class="uploads" aria-label="Uploads">
          {uploads.map((u) => (
            <li key={u.id} data-testid="upload">
              <span class="name">{u.name}</span>
              <progress max={u.size || 1} value={u.state === 'uploading' ? u.sent : u.size || 1} aria-label={`upload of ${u.name}`} />
              <span class="small" data-testid="upload-state">
                {u.state === 'uploading' && `${bytes(u.sent)} of ${bytes(u.size)}`}
                {u.state === 'indexing' && 'sent; chunking and embedding…'}
                {u.state === 'done' && `added: ${u.chunks ?? '?'} ${u.chunks === 1 ? 'chunk' : 'chunks'}`}
                {u.state === 'error' && 'failed'}
              </span>
              {u.error && <ErrorNote error={u.error} />}
            </li>
          ))}
        </ul>
      )}
      {error && <ErrorNote error={error} />}
      {list && (
        <>
          <p class="small">
            {list.data.length} documents · {count(list.data.reduce((n, d) => n + d.chunks, 0))} chunks · corpus version{' '}
            <code title={list.corpus_version} data-testid="corpus-version">
              {short(list.corpus_version)}
            </code>
          </p>
          <div class="table-wrap">
            <table class="stack">
              <thead>
                <tr>
                  <th scope="col">Title</th>
                  <th scope="col" class="num">Chunks</th>
                  <th scope="col" class="num">Size</th>
                  <th scope="col">Added</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.data.map((d) => (
                  <tr key={d.id} data-testid="document-row">
                    <td class="title">
                      <span class="doc-title">{d.title}</span>
                      <br />
                      <code class="small muted">{d.id}</code>
                    </td>
                    <td class="num" data-label="Chunks">{d.chunks}</td>
                    <td class="num" data-label="Size">{count(d.characters)} chars</td>
                    <td data-label="Added">{new Date(d.created_at).toLocaleString()}</td>
                    <td>
                      <button type="button" class="secondary small" onClick={() => void remove(d.id, d.title)} aria-label={`Delete ${d.title}`}>
                        Delete
                      </button>
                    </td>
                  </tr>
                ))}
                {list.data.length === 0 && (
                  <tr>
                    <td colSpan={5} class="muted">
                      No documents yet.
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
