/**
 * Shared state across replicas: two server processes on one real Redis
 * (Debian's redis-server, started here on a free port). An answer cached
 * through one is a hit through the other (exact and semantic), a key
 * revoked through one stops working on both, a rate limit and a budget hold
 * across both, and with Redis killed mid-test requests keep succeeding and
 * the cache comes back by itself once Redis does.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { writeTestModel } from './helpers/fixtures.ts';
import { RedisKeyStore } from '../src/services/api-keys.ts';
import { realModel, ROOT, tempDir } from './helpers/paths.ts';
import { startRedis, type TestRedis } from './helpers/redis.ts';

let redis: TestRedis;
let llm = '';
let embedder = '';
const children: ChildProcess[] = [];

before(async () => {
  redis = await startRedis();
  llm = writeTestModel(tempDir(), 'llama', 'q8_0', 1024);
  embedder = realModel('all-minilm-l6-v2')!;
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await redis?.stop();
});

/** Starts a replica with this environment on top of the shared Redis. */
async function replica(env: Record<string, string>): Promise<string> {
  const child = spawn(path.join(ROOT, 'scripts', 'node.sh'), [path.join(ROOT, '__test__', 'helpers', 'serve-replica.ts'), tempDir('candela-data-'), llm, embedder], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, REDIS_URL: redis.url, CANDELA_LOG_LEVEL: 'silent', ...env },
  });
  children.push(child);
  const [url] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  return url;
}

const DOCS = ['The cat sat on the mat by the door.', 'Paris is the capital of France.'];

function client(base: string, key?: string) {
  const headers = (extra: Record<string, string> = {}) => ({ ...(key ? { authorization: `Bearer ${key}` } : {}), ...extra });
  return {
    post: (p: string, body: unknown) => fetch(`${base}${p}`, { method: 'POST', headers: headers({ 'content-type': 'application/json' }), body: JSON.stringify(body) }),
    get: (p: string) => fetch(`${base}${p}`, { headers: headers() }),
    del: (p: string) => fetch(`${base}${p}`, { method: 'DELETE', headers: headers() }),
    async query(q: string, extra: Record<string, unknown> = {}) {
      const res = await this.post('/v1/query', { query: q, max_tokens: 5, top_k_retrieve: 2, top_k_rerank: 1, ...extra });
      const body = (await res.json()) as { answer: string };
      return { status: res.status, xcache: res.headers.get('x-cache'), answer: body.answer };
    },
  };
}

/** Waits until both replicas report the same documents' version (B follows A through Redis). */
async function sameCorpus(a: ReturnType<typeof client>, b: ReturnType<typeof client>): Promise<void> {
  const version = async (c: ReturnType<typeof client>) => ((await (await c.get('/v1/documents')).json()) as { corpus_version: string }).corpus_version;
  await eventually('same corpus on both replicas', async () => (await version(a)) === (await version(b)));
}

async function eventually(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${what}: not within ${ms} ms`);
}

describe('two replicas share the cache and the keys', () => {
  const prefix = 'g1:';
  let a: ReturnType<typeof client>;
  let b: ReturnType<typeof client>;
  let adminKey = '';
  let userKey = '';
  let userKeyId = '';
  let urls: string[] = [];

  before(async () => {
    const conn = new Redis(redis.url);
    const keys = new RedisKeyStore(conn, prefix);
    adminKey = (await keys.create({ name: 'ops', scopes: ['admin'] })).key;
    const user = await keys.create({ name: 'team', scopes: ['read', 'write'] });
    userKey = user.key;
    userKeyId = user.record.id;
    conn.disconnect();
    urls = await Promise.all([0, 1].map(() => replica({ CANDELA_REDIS_PREFIX: prefix, CANDELA_AUTH: 'true' })));
    a = client(urls[0]!, userKey);
    b = client(urls[1]!, userKey);
    // Documents live in Redis: added through A, B follows, and they agree on the corpus version.
    assert.equal((await a.post('/v1/documents', { documents: DOCS.map((text, i) => ({ id: `d${i}`, text })) })).status, 201);
    await sameCorpus(a, b);
  });

  it('an answer cached through one replica is an exact and a semantic hit through the other', async () => {
    const first = await a.query('Where did the cat sit?');
    assert.equal(first.xcache, 'miss');
    // A stores its answer once it has sent it. Wait for the entry in Redis itself and in B's
    // index (B follows Redis's change stream) without asking B anything, so B cannot have
    // cached an answer of its own: B's first lookups must be hits on A's entry.
    const conn = new Redis(redis.url);
    await eventually("A's entry in Redis", async () => (await conn.zcard(`${prefix}cache:z`)) === 1);
    conn.disconnect();
    const indexed = async () => ((await (await b.get('/health/stats')).json()) as { cache: { entries: number } }).cache.entries;
    await eventually("A's entry in B's index", async () => (await indexed()) === 1);
    const exact = await b.query('where did the cat sit');
    assert.equal(exact.xcache, 'exact', "B's first lookup is a hit on A's entry");
    assert.equal(exact.answer, first.answer);
    const semantic = await b.query('Where was the cat sitting?');
    assert.equal(semantic.xcache, 'semantic');
    assert.equal(semantic.answer, first.answer);
    assert.equal(await indexed(), 1, 'B added no entry of its own');
  });

  it('a key revoked through one replica stops working on both at once', async () => {
    const temp = (await (await client(urls[0]!, adminKey).post('/v1/keys', { name: 'temp', scopes: ['read'] })).json()) as { key: string; id: string };
    assert.equal((await client(urls[1]!, temp.key).get('/v1/models')).status, 200);
    assert.equal((await client(urls[0]!, adminKey).del(`/v1/keys/${temp.id}`)).status, 200);
    assert.equal((await client(urls[1]!, temp.key).get('/v1/models')).status, 401);
    assert.equal((await client(urls[0]!, temp.key).get('/v1/models')).status, 401);
    assert.ok(userKeyId);
  });

  it('a flush through one replica empties the cache of both', async () => {
    assert.equal((await b.query('Where did the cat sit?')).xcache, 'exact');
    assert.equal((await client(urls[0]!, adminKey).del('/v1/cache')).status, 200);
    assert.equal((await b.query('Where did the cat sit?')).xcache, 'miss');
  });
});

describe('two replicas share rate limits', () => {
  it('a per-address request limit holds across both', async () => {
    const [ua, ub] = await Promise.all([0, 1].map(() => replica({ CANDELA_REDIS_PREFIX: 'g2:', CANDELA_RATE_LIMIT_IP_RPM: '4' })));
    const statuses: number[] = [];
    for (const u of [ua, ub, ua, ub, ua, ub]) statuses.push((await fetch(`${u}/v1/models`)).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429]);
  });
});

describe('two replicas share the budget', () => {
  it('spend through one counts against the other (atomic in Redis)', async () => {
    // 0.001 per completion token, budget 0.01: each 4-token generation reserves (and, with
    // ignore_eos, spends) 0.004, so two through A leave no room for a third anywhere.
    const env = { CANDELA_REDIS_PREFIX: 'g3:', CANDELA_BUDGET: '0.01', CANDELA_PRICE_INPUT_PER_1K: '0', CANDELA_PRICE_OUTPUT_PER_1K: '1' };
    const [ua, ub] = await Promise.all([0, 1].map(() => replica(env)));
    const gen = (u: string) => client(u).post('/v1/generate', { prompt: 'count with me', max_tokens: 4, ignore_eos: true });
    assert.equal((await gen(ua!)).status, 200);
    assert.equal((await gen(ua!)).status, 200);
    const refused = await gen(ub!);
    assert.equal(refused.status, 503, "B's first request must see the spend made through A");
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'budget_exceeded');
    const stats = (await (await fetch(`${ub}/health/stats`)).json()) as { breaker: { state: string; spent: number } };
    assert.equal(stats.breaker.state, 'open');
    assert.ok(stats.breaker.spent > 0.006, `spent ${stats.breaker.spent}`);
  });
});

describe('Redis going away', () => {
  it('requests keep succeeding without the cache, and the cache comes back by itself when Redis does', async () => {
    const conn = new Redis(redis.url);
    const store = new RedisKeyStore(conn, 'g4:');
    const { key, record } = await store.create({ name: 'team', scopes: ['read', 'write'] });
    const { key: unseen } = await store.create({ name: 'other', scopes: ['read'] });
    const keyRecord = await conn.hget(store.hashKey, record.id);
    conn.disconnect();
    const [ua, ub] = await Promise.all([0, 1].map(() => replica({ CANDELA_REDIS_PREFIX: 'g4:', CANDELA_AUTH: 'true' })));
    const a = client(ua!, key);
    const b = client(ub!, key);
    assert.equal((await a.post('/v1/documents', { documents: DOCS.map((text, i) => ({ id: `d${i}`, text })) })).status, 201);
    await sameCorpus(a, b);
    assert.equal((await a.query('What is the capital of France?')).xcache, 'miss');
    assert.equal((await b.query('What is the capital of France?')).xcache, 'exact');

    redis.kill();
    for (let i = 0; i < 4; i++) {
      const r = await (i % 2 ? b : a).query(`Question ${i} asked while Redis is down?`);
      assert.equal(r.status, 200);
      assert.equal(r.xcache, 'miss');
    }
    assert.equal((await a.post('/v1/generate', { prompt: 'still here', max_tokens: 2 })).status, 200);
    // Keys verified before the outage keep working; one never seen cannot be checked.
    const refused = await client(ua!, unseen).get('/v1/models');
    assert.equal(refused.status, 503);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'auth_unavailable');
    const metrics = await (await a.get('/metrics')).text();
    assert.match(metrics, /candela_cache_store_errors_total\{op="[a-z_]+"\} [1-9]/);

    await redis.restart();
    // This test Redis keeps nothing across a restart; a production one persists its keys. Put the key back.
    const again = new Redis(redis.url);
    await again.hset('g4:keys', record.id, keyRecord!);
    again.disconnect();
    // The restarted Redis is empty (no persistence here): a new answer is cached and shared again.
    await eventually('cache back on A', async () => {
      await a.query('Is the cache back after the outage?');
      return (await a.query('Is the cache back after the outage?')).xcache === 'exact';
    }, 20_000);
    await eventually('cache back on B', async () => (await b.query('Is the cache back after the outage?')).xcache === 'exact', 20_000);
  });
});
