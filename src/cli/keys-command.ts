/**
 * `candela keys create | list | revoke`: manages API keys in the configured
 * store (Redis when REDIS_URL is set, else the keys file in the data
 * directory). A running server sees the changes at once. The plain key is
 * printed by `create` only; it is never stored.
 */
import type { Config } from '../config.ts';
import { ApiKeyError, parseScopes, type ApiKeyRecord, type KeyStore, type Scope } from '../services/api-keys.ts';
import { openKeyStore } from '../services/key-store.ts';
import { COMMON_OPTIONS, parse, UsageError } from './usage.ts';

export async function keysCommand(args: string[], config: Config): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'create' && sub !== 'list' && sub !== 'revoke') {
    throw new UsageError(`keys needs a subcommand: create, list or revoke${sub ? ` (got '${sub}')` : ''}`);
  }
  // Arguments are checked before the store is opened.
  const run = prepare(sub, rest);
  const opened = openKeyStore(config);
  try {
    return await run(opened.store);
  } catch (e) {
    if (config.redisUrl === '' || e instanceof UsageError) throw e;
    throw new Error(`key store in Redis at ${redisHost(config.redisUrl)}: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    await opened.close();
  }
}

/** host:port of a Redis URL (never its password). */
function redisHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid URL)';
  }
}

type Action = (store: KeyStore) => Promise<number>;

function prepare(sub: 'create' | 'list' | 'revoke', args: string[]): Action {
  if (sub === 'create') {
    const { values, positionals } = parse(args, {
      ...COMMON_OPTIONS,
      name: { type: 'string' },
      scopes: { type: 'string' },
      tenant: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (positionals.length > 0) throw new UsageError(`keys create takes no arguments (got '${positionals[0]}')`);
    if (values.name === undefined || values.name.trim() === '') throw new UsageError('keys create needs --name NAME');
    if (values.tenant !== undefined && values.tenant.trim() === '') throw new UsageError('--tenant must not be empty');
    let scopes: Scope[];
    try {
      scopes = parseScopes(values.scopes ?? 'read');
    } catch (e) {
      if (e instanceof ApiKeyError) throw new UsageError(`--scopes: ${e.message}`);
      throw e;
    }
    const name = values.name;
    const tenant = values.tenant;
    return async (store) => {
      const { key, record } = await usage(() => store.create({ name, scopes, tenant }));
      if (values.json) {
        const { id, tenant: t, scopes: s, created_at } = record;
        process.stdout.write(JSON.stringify({ key, id, name: record.name, tenant: t, scopes: s, created_at }) + '\n');
      } else {
        process.stdout.write(
          `id:      ${record.id}\nname:    ${record.name}\ntenant:  ${record.tenant}\nscopes:  ${record.scopes.join(',')}\nkey:     ${key}\n`,
        );
        process.stderr.write('Store this key now: it is shown only once (Candela keeps only its hash).\n');
      }
      return 0;
    };
  }
  if (sub === 'list') {
    const { values, positionals } = parse(args, { ...COMMON_OPTIONS, json: { type: 'boolean' } });
    if (positionals.length > 0) throw new UsageError(`keys list takes no arguments (got '${positionals[0]}')`);
    return async (store) => {
      const records = await store.list();
      if (values.json) {
        process.stdout.write(JSON.stringify(records.map(publicFields)) + '\n');
      } else if (records.length === 0) {
        process.stdout.write('no API keys\n');
      } else {
        process.stdout.write(table(records));
      }
      return 0;
    };
  }
  const { positionals } = parse(args, { ...COMMON_OPTIONS });
  if (positionals.length !== 1) throw new UsageError('keys revoke needs exactly one key ID');
  const id = positionals[0]!;
  return async (store) => {
    if (!(await store.revoke(id))) {
      process.stderr.write(`candela: no API key with id '${id}'\n`);
      return 1;
    }
    process.stdout.write(`revoked API key ${id}\n`);
    return 0;
  };
}

/** Runs `fn`, turning invalid key options into usage errors. */
async function usage<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ApiKeyError) throw new UsageError(e.message);
    throw e;
  }
}

/** A record without its hash. */
function publicFields(r: ApiKeyRecord): Omit<ApiKeyRecord, 'hash'> {
  return { id: r.id, name: r.name, tenant: r.tenant, scopes: r.scopes, created_at: r.created_at, revoked_at: r.revoked_at };
}

function table(records: ApiKeyRecord[]): string {
  const rows = [
    ['ID', 'NAME', 'TENANT', 'SCOPES', 'CREATED', 'REVOKED'],
    ...records.map((r) => [r.id, r.name, r.tenant, r.scopes.join(','), r.created_at, r.revoked_at ?? '-']),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) => row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ') + '\n').join('');
}
