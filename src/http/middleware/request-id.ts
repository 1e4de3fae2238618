/**
 * Request ids: a client's `X-Request-ID` is kept when it is sane, otherwise
 * one is generated; either way it is echoed in the response header and is
 * available to handlers and logs as `res.locals.requestId`. With a replica
 * id, every response also names the replica that served it (`X-Replica-ID`),
 * so a client behind a load balancer can correlate what it measured.
 */
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

const SANE = /^[\w.:@/-]{1,128}$/;

/** Options of {@link createRequestId}. */
export interface RequestIdOptions {
  /** This replica's name, sent as `X-Replica-ID` (omitted when undefined). */
  replicaId?: string | undefined;
}

/** Creates the request-id middleware. */
export function createRequestId(options: RequestIdOptions = {}): (req: Request, res: Response, next: NextFunction) => void {
  return function requestId(req, res, next) {
    const given = req.get('x-request-id');
    const id = given && SANE.test(given) ? given : randomUUID();
    res.locals['requestId'] = id;
    res.setHeader('X-Request-ID', id);
    if (options.replicaId) res.setHeader('X-Replica-ID', options.replicaId);
    next();
  };
}

/** The request id of a response. */
export function requestIdOf(res: Response): string {
  return String(res.locals['requestId'] ?? '');
}
