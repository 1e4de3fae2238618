/**
 * Administration (scope `admin`): API keys (create, list, revoke) and the
 * semantic cache (stats, flush). The plain key appears once, in the answer
 * to its creation.
 */
import { Router } from 'express';
import { z } from 'zod';
import { ApiKeyError, SCOPES, type ApiKeyRecord, type KeyStore } from '../../services/api-keys.ts';
import type { SemanticCache } from '../../services/cache/semantic-cache.ts';
import { HttpError } from '../errors.ts';
import { trimmedText, validate } from '../validate.ts';

/** What the key store refuses in a name or tenant (see checkLabel in api-keys.ts). */
const NO_CONTROL = { pattern: new RegExp('^[^\\u0000-\\u001f\\u007f]*$'), message: 'must not contain control characters' };

export const CreateKeyBody = z.object({
  name: trimmedText(1, 64, 'must not be empty', NO_CONTROL),
  scopes: z.array(z.enum(SCOPES)).min(1).default(['read']),
  tenant: trimmedText(1, 64, 'must not be empty', NO_CONTROL).optional(),
});

/** A key as the API shows it: never the hash. */
function keyOut(r: ApiKeyRecord) {
  return { id: r.id, name: r.name, tenant: r.tenant, scopes: r.scopes, created_at: r.created_at, revoked_at: r.revoked_at };
}

export function createAdminRoutes(options: { keys?: KeyStore | undefined; cache?: SemanticCache | undefined }): Router {
  const r = Router();
  const keys = (): KeyStore => {
    if (!options.keys) throw new HttpError(404, 'not_configured', 'no API key store is configured on this server');
    return options.keys;
  };
  const cache = (): SemanticCache => {
    if (!options.cache) throw new HttpError(404, 'not_configured', 'the semantic cache is off on this server');
    return options.cache;
  };

  r.get('/v1/keys', async (_req, res) => {
    res.json({ object: 'list', data: (await keys().list()).map(keyOut) });
  });
  r.post('/v1/keys', async (req, res) => {
    const body = validate(CreateKeyBody, req.body);
    try {
      const { key, record } = await keys().create({ name: body.name, scopes: body.scopes, ...(body.tenant ? { tenant: body.tenant } : {}) });
      res.status(201).json({ key, ...keyOut(record) });
    } catch (err) {
      if (err instanceof ApiKeyError) throw new HttpError(422, 'invalid_key_options', err.message);
      throw err;
    }
  });
  r.delete('/v1/keys/:id', async (req, res) => {
    const id = String(req.params['id']);
    if (!(await keys().revoke(id))) throw new HttpError(404, 'key_not_found', `no API key '${id}'`);
    res.json({ id, revoked: true });
  });

  r.get('/v1/cache', (_req, res) => {
    res.json(cache().stats());
  });
  r.delete('/v1/cache', async (_req, res) => {
    const flushed = await cache()
      .flush()
      .catch((err: unknown) => {
        throw new HttpError(503, 'cache_unavailable', 'the cache store cannot be reached', { retryAfter: 1, cause: err });
      });
    res.json({ flushed });
  });
  return r;
}
