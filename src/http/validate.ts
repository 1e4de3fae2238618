/** Request validation with zod: the first issue becomes a 422 naming its parameter. */
import { z } from 'zod';
import { HttpError } from './errors.ts';

/** Parses `value` with `schema` or throws a 422 {@link HttpError}. */
export function validate<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const param = issue && issue.path.length > 0 ? issue.path.join('.') : null;
  const where = param ? `${param}: ` : '';
  throw new HttpError(422, 'invalid_request', `${where}${issue?.message ?? 'invalid request'}`, { param });
}

/** JavaScript's whitespace (what `String.prototype.trim` removes), spelled out so every regex engine reads it alike. */
const WS = '\\t-\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff';

/**
 * A string that is trimmed before use and must keep at least `min` characters
 * once trimmed, at most `max` (if given) as sent. Both limits are in the JSON Schema
 * (`maxLength`, and a `pattern` that needs `min` characters between the
 * first and last non-blank), so the document refuses exactly what the
 * validator refuses. `also` is one more pattern the text must match as sent.
 */
export function trimmedText(min: number, max: number | undefined, message: string, also?: { pattern: RegExp; message: string }): z.ZodString {
  const solid = `[^${WS}]`;
  const pattern = min <= 1 ? solid : `${solid}[\\s\\S]{${min - 2},}${solid}`;
  const s = (max === undefined ? z.string() : z.string().max(max)).regex(new RegExp(pattern), message);
  return (also ? s.regex(also.pattern, also.message) : s).trim();
}
