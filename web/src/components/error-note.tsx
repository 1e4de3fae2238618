/** An error as the server put it: its message, code and request id, never a blank. */
import { ApiError } from '../api.ts';

/** What to do about an error, when the page knows better than the message. */
function hint(e: ApiError): string | undefined {
  if (e.status === 401) return 'This server needs an API key: enter one under “API key” at the top of the page.';
  if (e.status === 403) return 'Your API key lacks the scope this needs: ask an admin for a key with it.';
  if (e.status === 429 || e.status === 503) return 'The server is busy or protecting its budget: try again in a moment.';
  if (e.code === 'network_error') return 'Is Candela still running? Check the terminal that started it.';
  return undefined;
}

/** Converts anything thrown into an {@link ApiError}, so every failure shows a message. */
export function asApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  return new ApiError(0, 'client_error', err instanceof Error ? err.message || err.name : String(err));
}

export function ErrorNote({ error }: { error: ApiError }) {
  const h = hint(error);
  return (
    <div class="error" role="alert">
      <strong>{error.message}</strong>
      <span class="muted">
        {' '}
        ({error.status ? `${error.status} ` : ''}
        {error.code}
        {error.requestId ? `, request ${error.requestId}` : ''})
      </span>
      {h && <p>{h}</p>}
    </div>
  );
}
