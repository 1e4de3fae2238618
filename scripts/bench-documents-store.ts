/**
 * Document store benchmark (a script that prints numbers, not a test).
 *
 *   npm run bench:documents -- [--sizes 1000,10000] [--chunks 4] [--redis redis://HOST:PORT]
 *
 * For each corpus size, with documents of `--chunks` chunks (384-d vectors,
 * ~250 characters of text each): the write rate of the file store (atomic
 * write + fsync per document) and of the Redis store (one Lua script per
 * document), 16 writes in flight; the time a fresh replica takes to load the
 * corpus (open); and, for Redis, how long a write through one replica takes
 * to reach another's corpus (put → the peer's listener, p50/p99). Without
 * --redis a throwaway redis-server is started (Debian's, as the tests use).
 */
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { startRedis } from '../__test__/helpers/redis.ts';
import { tempDir } from '../__test__/helpers/paths.ts';
import type { DocumentStore, StoredDocument } from '../src/services/document-store.ts';
import { FileDocumentStore } from '../src/services/document-store-file.ts';
import { RedisDocumentStore } from '../src/services/document-store-redis.ts';
import { redisOptions } from '../src/services/redis.ts';

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '1000,10000' }, chunks: { type: 'string', default: '4' }, redis: { type: 'string' } } });
const sizes = values.sizes.split(',').map(Number);
const chunks = Number(values.chunks);
const logger = pino({ level: 'silent' });
const out = (s: string) => process.stdout.write(`${s}\n`);
const q = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))]!;

const own = values.redis ? undefined : await startRedis();
const url = values.redis ?? own!.url;

function doc(i: number): StoredDocument {
  const text = `Document ${i}. ${'Words that fill a chunk of a document. '.repeat(6)}`;
  return {
    id: `d${i}`,
    title: `Document ${i}`,
    text: text.repeat(chunks),
    created_at: new Date().toISOString(),
    embedder: 'bench',
    chunks: Array.from({ length: chunks }, () => ({ text, embedding: Float32Array.from({ length: 384 }, () => Math.random() - 0.5) })),
  };
}

async function writeAll(store: DocumentStore, n: number): Promise<number> {
  const t = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < n) await store.put(doc(next++));
    }),
  );
  return n / ((performance.now() - t) / 1000);
}

async function timeOpen(make: () => DocumentStore): Promise<{ ms: number; docs: number; store: DocumentStore }> {
  const store = make();
  let docs = 0;
  const t = performance.now();
  await store.open((c) => {
    if (c.op === 'reset') docs = c.docs.length;
  });
  return { ms: performance.now() - t, docs, store };
}

const client = () => new Redis(url, redisOptions());
out(`documents of ${chunks} chunks (384-d), 16 writes in flight; redis ${url}`);
for (const n of sizes) {
  const dir = tempDir('candela-bench-docs-');
  const file = new FileDocumentStore(dir);
  await file.open(() => {});
  const fileRate = await writeAll(file, n);
  const fileLoad = await timeOpen(() => new FileDocumentStore(dir));
  rmSync(dir, { recursive: true, force: true });

  const prefix = `bench${n}:${Date.now()}:docs:`;
  const writer = new RedisDocumentStore({ redis: client(), prefix, logger });
  await writer.open(() => {});
  const redisRate = await writeAll(writer, n);
  const redisLoad = await timeOpen(() => new RedisDocumentStore({ redis: client(), prefix, logger }));

  // Propagation: a put through `writer`, until the loaded replica's listener has it.
  const peer = redisLoad.store;
  const seen = new Map<string, () => void>();
  await peer.close();
  const follower = new RedisDocumentStore({ redis: client(), prefix, logger });
  await follower.open((c) => {
    if (c.op === 'put') seen.get(c.doc.id)?.();
  });
  const lat: number[] = [];
  for (let i = 0; i < 200; i++) {
    const d = doc(n + i);
    const arrived = new Promise<void>((resolve) => seen.set(d.id, resolve));
    const t = performance.now();
    await writer.put(d);
    await arrived;
    lat.push(performance.now() - t);
  }
  await Promise.all([writer.close(), follower.close()]);
  const raw = new Redis(url);
  const keys = await raw.keys(`${prefix}*`);
  for (let i = 0; i < keys.length; i += 1000) await raw.unlink(...keys.slice(i, i + 1000));
  raw.disconnect();

  out(`N=${n}`);
  out(`  file  store: write ${fileRate.toFixed(0).padStart(6)} docs/s   load ${fileLoad.ms.toFixed(0).padStart(6)} ms (${fileLoad.docs} docs)`);
  out(`  redis store: write ${redisRate.toFixed(0).padStart(6)} docs/s   load ${redisLoad.ms.toFixed(0).padStart(6)} ms (${redisLoad.docs} docs)   put→peer p50 ${q(lat, 0.5).toFixed(2)} ms p99 ${q(lat, 0.99).toFixed(2)} ms`);
}
await own?.stop();
process.exit(0);
