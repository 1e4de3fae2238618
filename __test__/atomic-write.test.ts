/**
 * The one atomic-write helper (temp file, fsync, rename, fsync the
 * directory) and the archive reader the model puller streams members with.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { archiveMember } from '../src/models/archive.ts';
import { PullError } from '../src/models/pull-errors.ts';
import { commitFile, tempPathFor, writeFileAtomic } from '../src/util/atomic-write.ts';
import { tempDir } from './helpers/paths.ts';

describe('writeFileAtomic', () => {
  it('creates, then replaces a file whole, leaving no temp file behind', async () => {
    const dir = path.join(tempDir(), 'nested', 'dir');
    const target = path.join(dir, 'state.json');
    await writeFileAtomic(target, '{"v":1}');
    assert.equal(readFileSync(target, 'utf8'), '{"v":1}');
    await writeFileAtomic(target, new Uint8Array([0x7b, 0x7d]));
    assert.equal(readFileSync(target, 'utf8'), '{}');
    assert.deepEqual(readdirSync(dir), ['state.json']);
  });

  it('sets an explicit mode exactly (secrets are 0600 whatever the umask)', async () => {
    const target = path.join(tempDir(), 'keys.json');
    await writeFileAtomic(target, 'secret', { mode: 0o600 });
    assert.equal(statSync(target).mode & 0o777, 0o600);
  });

  it('a failed write leaves the old file as it was', async () => {
    const dir = tempDir();
    const target = path.join(dir, 'doc.json');
    writeFileSync(target, 'old');
    // A directory in the way of the rename makes the commit fail after the temp file is written.
    const blocked = path.join(dir, 'blocked');
    mkdirSync(path.join(blocked, 'inner'), { recursive: true });
    await assert.rejects(writeFileAtomic(blocked, 'new'));
    assert.equal(readFileSync(target, 'utf8'), 'old');
    assert.deepEqual(readdirSync(dir).sort(), ['blocked', 'doc.json'], 'the temp file is removed');
  });

  it('commitFile moves a streamed temp file into place', async () => {
    const target = path.join(tempDir(), 'model.gguf');
    const tmp = tempPathFor(target);
    assert.equal(path.dirname(tmp), path.dirname(target), 'same directory, so the rename is atomic');
    writeFileSync(tmp, 'weights');
    await commitFile(tmp, target);
    assert.equal(readFileSync(target, 'utf8'), 'weights');
    assert.deepEqual(readdirSync(path.dirname(target)), ['model.gguf']);
  });
});

async function tgz(entries: { name: string; data: string }[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) pack.entry({ name: e.name }, e.data);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  return gzipSync(Buffer.concat(chunks));
}

async function readAll(it: AsyncIterable<Buffer>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts).toString('utf8');
}

describe('archiveMember (tar.gz)', () => {
  it('finds a member by its long (pax) name among others, and refuses a missing one', async () => {
    const long = `package/${'deep/'.repeat(40)}weights.bin`;
    const file = path.join(tempDir(), 'pkg.tgz');
    writeFileSync(file, await tgz([{ name: 'package/package.json', data: '{}' }, { name: long, data: 'W'.repeat(5000) }, { name: 'package/README.md', data: 'r' }]));
    assert.ok(long.length > 100, 'past ustar name fields');
    assert.equal(await readAll(archiveMember(file, long)), 'W'.repeat(5000));
    assert.equal(await readAll(archiveMember(file, './package/README.md')), 'r');
    await assert.rejects(readAll(archiveMember(file, 'package/nope')), (e: unknown) => e instanceof PullError && /no member/.test(e.message));
  });

  it('a corrupt archive is a PullError, not a crash', async () => {
    const file = path.join(tempDir(), 'bad.tgz');
    writeFileSync(file, Buffer.from('not gzip at all'));
    await assert.rejects(readAll(archiveMember(file, 'x')), (e: unknown) => e instanceof PullError && /malformed/.test(e.message));
    const zip = path.join(tempDir(), 'bad.whl');
    writeFileSync(zip, Buffer.from('not a zip'));
    await assert.rejects(readAll(archiveMember(zip, 'x')), (e: unknown) => e instanceof PullError && /malformed/.test(e.message));
  });
});
