/**
 * API keys: the file and Redis stores (create, verify, revoke, list; only
 * hashes at rest; changes by another process seen at once) and the
 * `candela keys` command as a user runs it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { FileKeyStore, hasScope, keyId, parseScopes, RedisKeyStore, type KeyStore } from '../src/services/api-keys.ts';
import { CLI, tempDir } from './helpers/paths.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from './helpers/redis.ts';

const KEY_FORMAT = /^cdl_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{43}$/;

/** The checks every store must pass. */
function storeContract(makeStore: () => KeyStore): void {
  it('creates keys that verify, with the given scopes and tenant', async () => {
    const store = makeStore();
    const { key, record } = await store.create({ name: 'alice', scopes: ['write', 'read'] });
    assert.match(key, KEY_FORMAT);
    assert.equal(keyId(key), record.id);
    assert.deepEqual(record.scopes, ['read', 'write']);
    assert.equal(record.tenant, 'alice', 'tenant defaults to the name');
    assert.equal(record.revoked_at, null);
    const v = await store.verify(key);
    assert.ok(v);
    assert.equal(v.id, record.id);
    assert.equal(v.name, 'alice');

    const other = await store.create({ name: 'bob', scopes: ['admin'], tenant: 'acme' });
    assert.equal(other.record.tenant, 'acme');
    assert.notEqual(other.key, key);
    assert.equal((await store.verify(other.key))?.tenant, 'acme');
  });

  it('rejects malformed, unknown, wrong-secret and revoked keys', async () => {
    const store = makeStore();
    const { key, record } = await store.create({ name: 'carol', scopes: ['read'] });
    const secret = key.slice(`cdl_${record.id}_`.length);
    const flipped = (secret[0] === 'A' ? 'B' : 'A') + secret.slice(1);
    for (const bad of [
      '',
      'nonsense',
      key.slice(0, -1),
      key + 'x',
      key.replace('cdl_', 'cdx_'),
      `cdl_${record.id}_${flipped}`, // right id, wrong secret
      `cdl_ZZZZZZZZZZZZ_${secret}`, // unknown id
      ` ${key}`,
    ]) {
      assert.equal(await store.verify(bad), undefined, `'${bad}' must not verify`);
    }
    assert.ok(await store.verify(key));
    assert.equal(await store.revoke(record.id), true);
    assert.equal(await store.verify(key), undefined, 'a revoked key fails');
    assert.equal(await store.revoke(record.id), true, 'revoking twice is fine');
    assert.equal(await store.revoke('ZZZZZZZZZZZZ'), false, 'unknown id');
    const listed = (await store.list()).find((r) => r.id === record.id);
    assert.ok(listed?.revoked_at, 'list shows the revocation');
  });

  it('lists every key, oldest first, revoked ones included', async () => {
    const store = makeStore();
    const before = (await store.list()).length;
    const a = await store.create({ name: 'first', scopes: ['read'] });
    await sleep(5); // created_at has millisecond resolution
    const b = await store.create({ name: 'second', scopes: ['write'] });
    await store.revoke(a.record.id);
    const all = await store.list();
    assert.equal(all.length, before + 2);
    const ids = all.map((r) => r.id);
    assert.ok(ids.indexOf(a.record.id) < ids.indexOf(b.record.id));
    assert.ok(all.every((r) => !JSON.stringify(r).includes(a.key.slice(17)) && !JSON.stringify(r).includes(b.key.slice(17))));
  });

  it('refuses invalid options', async () => {
    const store = makeStore();
    await assert.rejects(store.create({ name: '  ', scopes: ['read'] }), /name must not be empty/);
    await assert.rejects(store.create({ name: 'x', scopes: [] }), /at least one scope/);
    await assert.rejects(store.create({ name: 'x', scopes: ['root' as 'read'] }), /unknown scope 'root'/);
    await assert.rejects(store.create({ name: 'x', scopes: ['read'], tenant: '' }), /tenant must not be empty/);
  });
}

describe('scopes', () => {
  it('are independent, except that admin can do everything', () => {
    assert.equal(hasScope({ scopes: ['write'] }, 'read'), false);
    assert.equal(hasScope({ scopes: ['read'] }, 'write'), false);
    assert.equal(hasScope({ scopes: ['read'] }, 'admin'), false);
    assert.equal(hasScope({ scopes: ['read', 'write'] }, 'write'), true);
    for (const s of ['read', 'write', 'admin'] as const) assert.equal(hasScope({ scopes: ['admin'] }, s), true);
  });

  it('parse from a comma-separated list', () => {
    assert.deepEqual(parseScopes('write, read,read'), ['read', 'write']);
    assert.throws(() => parseScopes('read,root'), /unknown scope 'root'/);
    assert.throws(() => parseScopes(' , '), /no scopes/);
  });
});

describe('FileKeyStore', () => {
  const dir = tempDir();
  let n = 0;
  const fresh = (): FileKeyStore => new FileKeyStore(path.join(dir, `sub${++n}`, 'keys.json'));
  storeContract(fresh);

  it('a missing file means no keys; the directory is created on the first write', async () => {
    const store = fresh();
    assert.deepEqual(await store.list(), []);
    assert.equal(await store.verify('cdl_AAAAAAAAAAAA_' + 'A'.repeat(43)), undefined);
    await store.create({ name: 'x', scopes: ['read'] });
    assert.equal((await store.list()).length, 1);
  });

  it('keeps only hashes, in a 0600 file', async () => {
    const store = fresh();
    const { key, record } = await store.create({ name: 'dave', scopes: ['read'] });
    const text = readFileSync(store.filePath, 'utf8');
    assert.ok(!text.includes(key), 'the plain key is not in the file');
    assert.ok(!text.includes(key.slice(`cdl_${record.id}_`.length)), 'nor its secret');
    const data = JSON.parse(text) as { keys: { id: string; hash: string }[] };
    const [stored] = data.keys;
    assert.ok(stored);
    assert.equal(stored.id, record.id);
    assert.match(stored.hash, /^[0-9a-f]{64}$/);
    assert.equal(statSync(store.filePath).mode & 0o777, 0o600);
  });

  it('sees keys created and revoked through another instance at once', async () => {
    const file = path.join(dir, 'shared', 'keys.json');
    const server = new FileKeyStore(file);
    const cli = new FileKeyStore(file);
    const { key, record } = await cli.create({ name: 'eve', scopes: ['read'] });
    assert.ok(await server.verify(key), 'the new key verifies in the other instance');
    assert.equal(await cli.revoke(record.id), true);
    assert.equal(await server.verify(key), undefined, 'the revocation is seen immediately');
    const second = await server.create({ name: 'frank', scopes: ['write'] });
    assert.deepEqual((await cli.list()).map((r) => r.name), ['eve', 'frank'], 'neither write is lost');
    assert.ok(await cli.verify(second.key));
  });

  it('concurrent creates through several instances all land', async () => {
    const file = path.join(dir, 'concurrent', 'keys.json');
    const stores = [0, 1, 2, 3].map(() => new FileKeyStore(file));
    const made = await Promise.all(Array.from({ length: 20 }, (_, i) => stores[i % 4]!.create({ name: `k${i}`, scopes: ['read'] })));
    const check = new FileKeyStore(file);
    assert.equal((await check.list()).length, 20);
    for (const m of made) assert.ok(await check.verify(m.key));
  });

  it('a corrupt file fails closed', async () => {
    const store = fresh();
    const { key } = await store.create({ name: 'x', scopes: ['read'] });
    writeFileSync(store.filePath, '{"keys": [ {"id": 1} ]}');
    await assert.rejects(store.verify(key), /not valid/);
  });
});

describe('RedisKeyStore', { skip: skipUnlessRedis() }, () => {
  let server: TestRedis;
  let redis: Redis;
  let n = 0;
  before(async () => {
    server = await startRedis();
    redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    await redis?.quit();
    await server?.stop();
  });

  storeContract(() => new RedisKeyStore(redis, `test${++n}:`));

  it('keeps records in the hash <prefix>keys, without the plain key', async () => {
    const store = new RedisKeyStore(redis, 'layout:');
    const { key, record } = await store.create({ name: 'gina', scopes: ['read', 'admin'] });
    const raw = await redis.hget('layout:keys', record.id);
    assert.ok(raw);
    assert.ok(!raw.includes(key.slice(17)));
    assert.deepEqual(JSON.parse(raw), record);
    // A second store (another server) sees the revocation by the first.
    const other = new RedisKeyStore(redis, 'layout:');
    assert.ok(await other.verify(key));
    await store.revoke(record.id);
    assert.equal(await other.verify(key), undefined);
  });

  it('the helper restarts the server on the same port', async () => {
    const r = await startRedis();
    const c = new Redis(r.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    c.on('error', () => undefined);
    try {
      assert.equal(await c.ping(), 'PONG');
      r.kill();
      await r.restart();
      assert.equal(await c.ping(), 'PONG');
    } finally {
      c.disconnect();
      await r.stop();
    }
  });
});

describe('candela keys (CLI)', () => {
  const dataDir = tempDir();
  const env = { ...process.env, CANDELA_DATA_DIR: dataDir, REDIS_URL: '', CANDELA_REDIS_URL: '', CANDELA_KEYS_FILE: '' };

  function run(...args: string[]): { code: number | null; stdout: string; stderr: string } {
    const r = spawnSync(CLI, ['keys', ...args], { encoding: 'utf8', timeout: 60_000, env });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  function assertUsageError(r: ReturnType<typeof run>, pattern: RegExp): void {
    assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
  }

  it('create --json, list, revoke, list', async () => {
    const c = run('create', '--name', 'ci-bot', '--scopes', 'read,write', '--json');
    assert.equal(c.code, 0, c.stderr);
    const created = JSON.parse(c.stdout) as { key: string; id: string; name: string; tenant: string; scopes: string[]; created_at: string };
    assert.match(created.key, KEY_FORMAT);
    assert.equal(created.name, 'ci-bot');
    assert.equal(created.tenant, 'ci-bot');
    assert.deepEqual(created.scopes, ['read', 'write']);

    // The key works with a store opened on the same file (as the server does).
    const store = new FileKeyStore(path.join(dataDir, 'keys.json'));
    assert.equal((await store.verify(created.key))?.id, created.id);
    assert.ok(!readFileSync(store.filePath, 'utf8').includes(created.key));

    const human = run('create', '--name', 'ops', '--tenant', 'acme');
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /key:\s+cdl_/);
    assert.match(human.stdout, /scopes:\s+read\n/);
    assert.match(human.stdout, /tenant:\s+acme\n/);

    const l1 = run('list', '--json');
    assert.equal(l1.code, 0, l1.stderr);
    const rows = JSON.parse(l1.stdout) as Record<string, unknown>[];
    assert.equal(rows.length, 2);
    assert.ok(rows.every((r) => !('hash' in r) && !('key' in r)));
    assert.equal(rows[0]!['revoked_at'], null);

    const table = run('list');
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^ID\s+NAME\s+TENANT\s+SCOPES\s+CREATED\s+REVOKED\n/);
    assert.match(table.stdout, new RegExp(`${created.id}\\s+ci-bot\\s+ci-bot\\s+read,write\\s+\\S+\\s+-\\n`));
    assert.doesNotMatch(table.stdout, /cdl_|[0-9a-f]{64}/);

    const rv = run('revoke', created.id);
    assert.equal(rv.code, 0, rv.stderr);
    assert.match(rv.stdout, new RegExp(`revoked API key ${created.id}`));
    assert.equal(await store.verify(created.key), undefined, 'the open store sees the revocation at once');

    const l2 = JSON.parse(run('list', '--json').stdout) as { id: string; revoked_at: string | null }[];
    assert.ok(l2.find((r) => r.id === created.id)?.revoked_at);

    const unknown = run('revoke', 'ZZZZZZZZZZZZ');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no API key with id 'ZZZZZZZZZZZZ'/);
    assert.equal(unknown.stderr.trim().split('\n').length, 1);
  });

  it('usage mistakes exit 2 with one line and no stack trace', () => {
    assertUsageError(run('create', '--scopes', 'read'), /needs --name/);
    assertUsageError(run('create', '--name', 'x', '--scopes', 'read,root'), /unknown scope 'root'/);
    assertUsageError(run('create', '--name', 'x', '--bogus'), /Unknown option '--bogus'/);
    assertUsageError(run('rotate'), /create, list or revoke \(got 'rotate'\)/);
    assertUsageError(run(), /keys needs a subcommand/);
    assertUsageError(run('revoke'), /exactly one key ID/);
    assertUsageError(run('list', 'extra'), /takes no arguments/);
  });
});
