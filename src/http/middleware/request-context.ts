/** The caller of a request (tenant and rate-limit identity), as auth left it in `res.locals`. */
import type { Response } from 'express';
import { DEFAULT_TENANT, type RequestContext } from '../../services/inference.ts';

export function setContext(res: Response, ctx: RequestContext): void {
  res.locals['ctx'] = ctx;
}

/** The request's context; without auth every request is the default tenant, identified by its address. */
export function contextOf(res: Response): RequestContext {
  return (res.locals['ctx'] as RequestContext | undefined) ?? { tenant: DEFAULT_TENANT, identity: { ip: res.req.ip ?? '' } };
}
