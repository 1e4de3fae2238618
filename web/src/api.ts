/**
 * The page's only way to the server: Candela's public HTTP API, with the API
 * key (kept in this tab's session storage) sent as a bearer token. Errors come
 * back as {@link ApiError}s carrying the server's own message and code.
 */
import { readSse, type SseEvent } from './sse.ts';

const KEY_STORAGE = 'candela.apiKey';

/** The API key of this browser tab, or '' when none was given. */
export function apiKey(): string {
  try {
    return sessionStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    return '';
  }
}

/** Keeps `key` for this tab only (session storage: gone when the tab closes); '' forgets it. */
export function setApiKey(key: string): void {
  if (key) sessionStorage.setItem(KEY_STORAGE, key.trim());
  else sessionStorage.removeItem(KEY_STORAGE);
  for (const l of keyListeners) l();
}

const keyListeners = new Set<() => void>();

/** Calls `listener` whenever the key changes; returns the unsubscribe function. */
export function onKeyChange(listener: () => void): () => void {
  keyListeners.add(listener);
  return () => keyListeners.delete(listener);
}

/** A failed request: the HTTP status, the server's error code and message, and its request id. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId?: string,
  ) {
    super(message);
  }

  /** True when the answer was 401: no key, or a key the server does not know. */
  get needsKey(): boolean {
    return this.status === 401;
  }
}

const authListeners = new Set<(e: ApiError) => void>();

/** Calls `listener` for every 401 or 403, so the page can ask for a (better) key. */
export function onAuthError(listener: (e: ApiError) => void): () => void {
  authListeners.add(listener);
  return () => authListeners.delete(listener);
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const key = apiKey();
  return { ...(key ? { authorization: `Bearer ${key}` } : {}), ...extra };
}

/** Turns a non-2xx response into an {@link ApiError} with the server's message. */
export async function errorOf(res: Response): Promise<ApiError> {
  let code = `http_${res.status}`;
  let message = `${res.status} ${res.statusText}`.trim();
  let requestId = res.headers.get('x-request-id') ?? undefined;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string }; request_id?: string };
    if (body.error?.message) message = body.error.message;
    if (body.error?.code) code = body.error.code;
    requestId = body.request_id ?? requestId;
  } catch {
    // Not JSON (a proxy's page, say): the status line is all there is.
  }
  const e = new ApiError(res.status, code, message, requestId);
  if (res.status === 401 || res.status === 403) for (const l of authListeners) l(e);
  return e;
}

/** A network failure (server down, connection refused) as an {@link ApiError}. */
function unreachable(err: unknown): ApiError {
  return new ApiError(0, 'network_error', `could not reach the server: ${err instanceof Error ? err.message : String(err)}`);
}

/** Sends a request; resolves with the response when it is 2xx, throws an {@link ApiError} otherwise. */
export async function request(path: string, init: { method?: string; json?: unknown; signal?: AbortSignal } = {}): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(path, {
      method: init.method ?? (init.json === undefined ? 'GET' : 'POST'),
      headers: headers(init.json === undefined ? {} : { 'content-type': 'application/json' }),
      body: init.json === undefined ? null : JSON.stringify(init.json),
      signal: init.signal ?? null,
    });
  } catch (err) {
    if (init.signal?.aborted) throw err;
    throw unreachable(err);
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

/** GETs (or sends) and parses JSON. */
export async function getJson<T>(path: string, init: { method?: string; json?: unknown; signal?: AbortSignal } = {}): Promise<T> {
  return (await (await request(path, init)).json()) as T;
}

/** An open event stream and the response headers that came with it. */
export interface EventStream {
  response: Response;
  events: AsyncGenerator<SseEvent>;
}

/** POSTs `json` and reads the answer as server-sent events. */
export async function postStream(path: string, json: unknown, signal: AbortSignal): Promise<EventStream> {
  const response = await request(path, { json, signal });
  if (!response.body) throw new ApiError(response.status, 'empty_body', 'the server sent no stream');
  return { response, events: readSse(response.body) };
}

/** Progress of one upload: bytes sent so far of the total. */
export type UploadProgress = (sent: number, total: number) => void;

/**
 * Uploads one file as multipart/form-data to POST /v1/documents. XMLHttpRequest,
 * not fetch: only it reports upload progress.
 */
export function uploadDocument(file: File, onProgress: UploadProgress): Promise<{ corpus_version: string; data: { id: string; title: string; chunks: number }[] }> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/v1/documents');
    const key = apiKey();
    if (key) xhr.setRequestHeader('authorization', `Bearer ${key}`);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onerror = () => reject(unreachable(new Error('upload failed')));
    xhr.onload = () => {
      const res = new Response(xhr.status === 204 ? null : xhr.responseText, {
        status: xhr.status,
        headers: { 'x-request-id': xhr.getResponseHeader('x-request-id') ?? '' },
      });
      if (xhr.status >= 200 && xhr.status < 300) resolve(res.json() as ReturnType<typeof uploadDocument>);
      else errorOf(res).then(reject, reject);
    };
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
}
