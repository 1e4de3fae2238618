/**
 * API keys (when auth is on): `Authorization: Bearer <key>` or `X-API-Key`.
 * 401 without a key or with a bad one (WWW-Authenticate says so), 403 when
 * the key lacks the route's scope. The key itself is never logged; the
 * request carries the key's id and tenant from here on.
 */
import type { NextFunction, Request, Response } from 'express';
import { hasScope, type KeyStore } from '../../services/api-keys.ts';
import { requiredScope } from '../access.ts';
import { HttpError } from '../errors.ts';
import { DEFAULT_TENANT } from '../../services/inference.ts';
import { setContext } from './request-context.ts';

export interface AuthOptions {
  /** The key store; undefined: auth off, every request is the default tenant. */
  keys: KeyStore | undefined;
  metricsAuth: boolean;
  onFailure?: (reason: 'missing' | 'invalid' | 'scope') => void;
}

function presentedKey(req: Request): string | undefined {
  const auth = req.get('authorization');
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m?.[1] ?? '';
  }
  return req.get('x-api-key') ?? undefined;
}

export function createAuth(options: AuthOptions): (req: Request, res: Response, next: NextFunction) => void {
  const challenge = (res: Response, error: string) => res.setHeader('WWW-Authenticate', `Bearer realm="candela", error="${error}"`);
  return function auth(req, res, next) {
    const ip = req.ip ?? '';
    setContext(res, { tenant: DEFAULT_TENANT, identity: { ip } });
    const keys = options.keys;
    const needed = requiredScope(req.method, req.path, { metricsAuth: options.metricsAuth });
    if (!keys || needed === null) {
      next();
      return;
    }
    const key = presentedKey(req);
    if (!key) {
      options.onFailure?.('missing');
      challenge(res, 'invalid_request');
      next(new HttpError(401, 'missing_api_key', 'this route needs an API key: send Authorization: Bearer <key>'));
      return;
    }
    keys.verify(key).then(
      (record) => {
        if (!record) {
          options.onFailure?.('invalid');
          challenge(res, 'invalid_token');
          next(new HttpError(401, 'invalid_api_key', 'the API key is not valid (unknown, malformed or revoked)'));
        } else if (!hasScope(record, needed)) {
          options.onFailure?.('scope');
          next(new HttpError(403, 'insufficient_scope', `this route needs the '${needed}' scope; the key has ${record.scopes.join(', ') || 'none'}`));
        } else {
          setContext(res, { tenant: record.tenant, identity: { keyId: record.id, ip } });
          next();
        }
      },
      (err: unknown) => next(new HttpError(503, 'auth_unavailable', 'API keys cannot be checked right now', { retryAfter: 1, cause: err })),
    );
  };
}
