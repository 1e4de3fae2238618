/**
 * Typed engine errors. Native errors arrive as JS errors whose `code`
 * property is the engine's stable code; they become {@link EngineError}s
 * here so the rest of the code switches on `code`.
 */

/** Stable codes shared with the Rust engine (`ErrorCode`). */
export const ENGINE_ERROR_CODES = [
  'MODEL_NOT_FOUND',
  'MODEL_NOT_READY',
  'CONTEXT_OVERFLOW',
  'OVERLOADED',
  'CANCELLED',
  'INVALID_INPUT',
  'LOAD_FAILED',
  'WRONG_MODEL_ROLE',
  'INTERNAL',
] as const;

export type EngineErrorCode = (typeof ENGINE_ERROR_CODES)[number];

/** An error raised by the engine, with its stable code. */
export class EngineError extends Error {
  readonly code: EngineErrorCode;

  constructor(code: EngineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EngineError';
    this.code = code;
  }
}

function isEngineCode(code: unknown): code is EngineErrorCode {
  return typeof code === 'string' && (ENGINE_ERROR_CODES as readonly string[]).includes(code);
}

/** Converts anything thrown by the addon into an {@link EngineError} (unknown codes: `INTERNAL`). */
export function toEngineError(err: unknown): EngineError {
  if (err instanceof EngineError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  return new EngineError(isEngineCode(code) ? code : 'INTERNAL', message, { cause: err });
}

/** Runs `fn`, rethrowing addon errors as {@link EngineError}s. */
export function native<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw toEngineError(err);
  }
}

/** Awaits `p`, rethrowing addon errors as {@link EngineError}s. */
export async function nativeAsync<T>(p: () => Promise<T>): Promise<T> {
  try {
    return await p();
  } catch (err) {
    throw toEngineError(err);
  }
}
