/**
 * Kill -9 during ingestion loses no acknowledged document, in both stores.
 * A server runs as a child process; four clients add documents in a loop and
 * record every 201; the server is SIGKILLed while writes are in flight, then
 * started again (the file store: on the same data directory; the Redis store:
 * a new process with an empty data directory on the same Redis), and every
 * acknowledged document must be there with its text.
 *
 * In those two, only the server process is killed and Redis stays up. What
 * survives a crash of Redis itself is Redis's own persistence setting: the
 * third case SIGKILLs Redis (not the server) mid-ingestion with `appendonly
 * yes` + `appendfsync always`, restarts it from its append-only file, and
 * finds every acknowledged document. (Redis write()s the AOF before it
 * replies, so a killed Redis process loses nothing acknowledged with
 * `everysec` either — that variant passed here too; what `everysec` risks is
 * up to a second of writes on a kernel crash or power loss, which no test here
 * can simulate. Without persistence a restarted Redis is empty: see
 * shared-documents.test.ts for what replicas do then.)
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { writeTestModel } from './helpers/fixtures.ts';
import { ROOT, tempDir } from './helpers/paths.ts';
import { skipUnlessRedis, startRedis, type TestRedis } from './helpers/redis.ts';

const fixtures = tempDir();
const children: ChildProcess[] = [];
const WORKERS = 4;
/** Acknowledged adds before the kill; writes keep flowing meanwhile. */
const KILL_AFTER_ACKS = 40;

before(() => {
  writeTestModel(fixtures, 'bert-mean'); // once, before the server processes race to write it
});

after(() => {
  for (const c of children) c.kill('SIGKILL');
});

async function spawnServer(dataDir: string, redisUrl?: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(path.join(ROOT, 'scripts', 'node.sh'), [path.join(ROOT, '__test__', 'helpers', 'serve-tiny.ts'), dataDir, fixtures, ...(redisUrl ? [redisUrl] : [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const [url] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  return { url, child };
}

const textOf = (id: string) => `Document ${id}: ${'durable words '.repeat(30)}end of ${id}.`;

/**
 * Ingests until the server dies (or, with `crash`, until that crash has been
 * answered by 20 failed requests); resolves with the ids it acknowledged (201)
 * and how many requests failed.
 */
async function ingestUntilKilled(server: { url: string; child: ChildProcess }, crash?: () => void): Promise<{ acked: string[]; failed: number }> {
  const acked: string[] = [];
  let failed = 0;
  let failedAfterCrash = 0;
  let crashed = false;
  let dead = false;
  void once(server.child, 'exit').then(() => (dead = true));
  const worker = async (w: number) => {
    for (let i = 0; !dead && failedAfterCrash < 20 && i < 10_000; i++) {
      const id = `w${w}-${i}`;
      try {
        const res = await fetch(`${server.url}/v1/documents`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id, text: textOf(id) }) });
        if (res.status === 201) {
          acked.push(id);
          if (acked.length === KILL_AFTER_ACKS) {
            crashed = true;
            if (crash) crash();
            else server.child.kill('SIGKILL');
          }
        } else {
          failed++;
          if (crashed) failedAfterCrash++;
        }
      } catch {
        failed++; // the connection died with the server: not acknowledged
      }
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
  return { acked, failed };
}

async function assertAllThere(url: string, acked: string[]): Promise<void> {
  const list = (await (await fetch(`${url}/v1/documents`)).json()) as { data: { id: string }[] };
  const have = new Set(list.data.map((d) => d.id));
  const missing = acked.filter((id) => !have.has(id));
  assert.deepEqual(missing, [], `acknowledged documents lost: ${missing.join(', ')}`);
  for (const id of acked) {
    const doc = (await (await fetch(`${url}/v1/documents/${id}`)).json()) as { text: string };
    assert.equal(doc.text, textOf(id));
  }
}

describe('kill -9 during ingestion loses no acknowledged document', () => {
  it('file store (data directory)', async () => {
    const dataDir = tempDir('candela-data-');
    const { acked } = await ingestUntilKilled(await spawnServer(dataDir));
    assert.ok(acked.length >= KILL_AFTER_ACKS);
    await assertAllThere((await spawnServer(dataDir)).url, acked);
  });

  describe('Redis store', { skip: skipUnlessRedis() }, () => {
    let redis: TestRedis;
    before(async () => {
      redis = await startRedis();
    });
    after(async () => {
      await redis?.stop();
    });

    it('the server is killed, Redis stays up; a new server on the same Redis has every acknowledged document', async () => {
      const { acked } = await ingestUntilKilled(await spawnServer(tempDir('candela-data-'), redis.url));
      assert.ok(acked.length >= KILL_AFTER_ACKS);
      await assertAllThere((await spawnServer(tempDir('candela-data-'), redis.url)).url, acked);
    });
  });

  describe('Redis store, Redis itself killed', { skip: skipUnlessRedis() }, () => {
    let redis: TestRedis;
    before(async () => {
      redis = await startRedis({ aofDir: tempDir('candela-redis-aof-') });
    });
    after(async () => {
      await redis?.stop();
    });

    it('appendfsync always: Redis is SIGKILLed mid-ingestion and restarted; every acknowledged document is there', async () => {
      const server = await spawnServer(tempDir('candela-data-'), redis.url);
      const { acked, failed } = await ingestUntilKilled(server, () => redis.kill());
      assert.ok(acked.length >= KILL_AFTER_ACKS);
      assert.ok(failed >= 20, 'adds failed while Redis was down');
      await redis.restart();
      await assertAllThere((await spawnServer(tempDir('candela-data-'), redis.url)).url, acked);
      // The server that saw Redis die follows it again, to the same revision.
      const revision = async (url: string) => ((await (await fetch(`${url}/v1/documents`)).json()) as { corpus_revision: number }).corpus_revision;
      const fresh = await spawnServer(tempDir('candela-data-'), redis.url);
      const deadline = Date.now() + 10_000;
      while ((await revision(server.url)) !== (await revision(fresh.url)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.equal(await revision(server.url), await revision(fresh.url));
    });
  });
});
