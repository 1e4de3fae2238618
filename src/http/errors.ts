/**
 * One error type for the HTTP layer, and the single place where engine error
 * codes become HTTP statuses. Bodies are OpenAI-shaped:
 * `{"error": {"message", "type", "code", "param"}}`.
 */
import { EngineError, type EngineErrorCode } from '../engine/index.ts';
import { BudgetExceededError } from '../services/cost/cost-breaker.ts';
import { RateLimitedError } from '../services/rate-limits.ts';

/** An error with an HTTP status, a stable code and an optional offending parameter. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly param: string | null;
  /** Seconds, for 429/503 answers. */
  readonly retryAfter: number | undefined;

  constructor(status: number, code: string, message: string, options: { param?: string | null; retryAfter?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.param = options.param ?? null;
    this.retryAfter = options.retryAfter;
  }

  /** OpenAI's error `type` for this status. */
  get type(): string {
    if (this.status === 429) return 'rate_limit_error';
    if (this.status === 401 || this.status === 403) return 'authentication_error';
    return this.status >= 500 ? 'server_error' : 'invalid_request_error';
  }

  toJSON(): { error: { message: string; type: string; code: string; param: string | null } } {
    return { error: { message: this.message, type: this.type, code: this.code, param: this.param } };
  }
}

const STATUS: Record<EngineErrorCode, number> = {
  MODEL_NOT_FOUND: 404,
  MODEL_NOT_READY: 503,
  CONTEXT_OVERFLOW: 422,
  OVERLOADED: 429,
  CANCELLED: 499,
  INVALID_INPUT: 422,
  LOAD_FAILED: 503,
  WRONG_MODEL_ROLE: 422,
  INTERNAL: 500,
};

/** Any thrown value as an {@link HttpError} (engine codes mapped once, here). */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof BudgetExceededError) return new HttpError(503, 'budget_exceeded', err.message, { retryAfter: err.retryAfterS, cause: err });
  if (err instanceof RateLimitedError) return new HttpError(429, 'rate_limited', err.message, { retryAfter: err.retryAfterS, cause: err });
  if (err instanceof EngineError) {
    const status = STATUS[err.code];
    const retryAfter = err.code === 'OVERLOADED' ? 1 : err.code === 'MODEL_NOT_READY' ? 5 : undefined;
    const message = status >= 500 && err.code === 'INTERNAL' ? 'internal engine error' : err.message;
    return new HttpError(status, err.code.toLowerCase(), message, { retryAfter, cause: err });
  }
  // express's own client errors (a path segment that is not valid percent-encoding: URIError, status 400).
  const status = (err as { status?: unknown } | null)?.status;
  if (err instanceof URIError && status === 400) return new HttpError(400, 'bad_request', 'the request path is not valid percent-encoding', { cause: err });
  return new HttpError(500, 'internal_error', 'internal server error', { cause: err });
}
