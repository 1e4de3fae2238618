/** Request validation with zod: the first issue becomes a 422 naming its parameter. */
import type { z } from 'zod';
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
