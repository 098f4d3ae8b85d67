/**
 * Crash safety of the fs driver: a child process (fixtures/slow-writer.ts) is SIGKILLed in the middle of a put or
 * an upload append; the store reopened afterwards must show nothing invalid, and must be able to finish the work.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createBlobStore } from '../../src/blobs/index.ts';
import { BlobNotFoundError, DigestMismatchError } from '../../src/blobs/errors.ts';
import type { BlobStore } from '../../src/blobs/types.ts';
import { hashStream, listDigests, listUploads, patternDigest, patternStream } from './suite.ts';

const MiB = 1024 * 1024;
const WRITER = fileURLToPath(new URL('./fixtures/slow-writer.ts', import.meta.url));

/** Starts the writer and resolves once it reports how many bytes are on disk. */
function startWriter(args: string[]): Promise<{ child: ChildProcess; onDisk: number }> {
  const child = spawn(process.execPath, [WRITER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  return new Promise((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /^MID (\d+)$/m.exec(out);
      if (m) resolve({ child, onDisk: Number(m[1]) });
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => reject(new Error(`writer exited (${code ?? signal}) before mid-write: ${err}`)));
  });
}

async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  const [, signal] = await exited;
  assert.equal(signal, 'SIGKILL');
}

async function files(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

describe('fs blob store after SIGKILL mid-write', () => {
  let root: string;
  let store: BlobStore | undefined;
  let child: ChildProcess | undefined;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'granary-crash-'));
  });

  afterEach(async () => {
    if (child !== undefined) await killHard(child);
    await store?.close();
    store = undefined;
    child = undefined;
    await rm(root, { recursive: true, force: true });
  });

  it('a killed put leaves only a temp file, which sweep removes; the put can be redone', async () => {
    const total = 16 * MiB;
    const stallAfter = 5 * MiB + 3;
    const digest = patternDigest(total, { seed: 50 });
    const started = await startWriter(['put', root, '50', String(total), String(stallAfter)]);
    child = started.child;
    assert.equal(started.onDisk, stallAfter);
    await killHard(child);

    store = await createBlobStore({ driver: 'fs', root }); // the start sweep spares a fresh temp file
    assert.equal(await store.stat(digest), null);
    await assert.rejects(store.open(digest), BlobNotFoundError);
    assert.deepEqual(await listDigests(store), []);
    assert.deepEqual(await listUploads(store), []);
    for (const alg of ['sha256', 'sha512']) assert.deepEqual(await files(join(root, alg)), [], `${alg} is empty`);
    const temps = await files(join(root, '_tmp'));
    assert.equal(temps.length, 1);
    assert.equal((await stat(join(root, '_tmp', temps[0]))).size, stallAfter);

    assert.equal(await store.sweep(0), 1);
    assert.deepEqual(await files(join(root, '_tmp')), []);

    const result = await store.put(patternStream(total, { seed: 50 }), { expectedDigest: digest });
    assert.deepEqual(result, { digest, size: total, created: true });
    assert.deepEqual(await hashStream(await store.open(digest)), { digest, size: total });
  });

  it('a killed append leaves a consistent prefix that can be resumed and committed', async () => {
    const total = 6 * MiB;
    const first = MiB;
    const stallAfter = 2 * MiB + 5;
    const id = 'crash-session-1';
    const digest = patternDigest(total, { seed: 51 });
    const started = await startWriter(['append', root, '51', String(total), String(stallAfter), id, String(first)]);
    child = started.child;
    await killHard(child);

    store = await createBlobStore({ driver: 'fs', root });
    const size = await store.uploads.size(id);
    assert.ok(size !== null && size >= first && size <= total, `size ${size} within [${first}, ${total}]`);
    assert.equal(size, started.onDisk, 'the bytes that reached the file are kept');
    assert.deepEqual(await listDigests(store), []);

    // the kept bytes are exactly the prefix that was sent: resuming from `size` yields the right blob
    const next = await store.uploads.append(id, patternStream(total - size, { seed: 51, start: size }), {
      offset: size,
    });
    assert.equal(next, total);
    assert.deepEqual(await store.uploads.commit(id, digest), { digest, size: total, created: true });
    assert.deepEqual(await hashStream(await store.open(digest)), { digest, size: total });
    assert.deepEqual(await listDigests(store), [digest]);
    assert.deepEqual(await listUploads(store), []);
    assert.deepEqual(await files(join(root, '_tmp')), []);
  });

  it('committing a killed append with the full digest is refused and publishes nothing', async () => {
    const total = 6 * MiB;
    const id = 'crash-session-2';
    const digest = patternDigest(total, { seed: 52 });
    const started = await startWriter(['append', root, '52', String(total), String(3 * MiB), id, String(MiB)]);
    child = started.child;
    await killHard(child);

    store = await createBlobStore({ driver: 'fs', root });
    await assert.rejects(store.uploads.commit(id, digest, {}), DigestMismatchError);
    assert.equal(await store.stat(digest), null);
    await assert.rejects(store.open(digest), BlobNotFoundError);
    assert.deepEqual(await listDigests(store), []);
    assert.equal(await store.uploads.size(id), null, 'a session that can never match is removed');
    assert.deepEqual(await files(join(root, '_uploads')), []);
    assert.deepEqual(await files(join(root, '_tmp')), []);
  });
});
