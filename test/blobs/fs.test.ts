/**
 * The fs driver: the shared conformance suite, plus what only a filesystem can show (on-disk layout, strays after
 * failures, the start sweep, sessions surviving a restart, wrapped backend errors).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, rmdir, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createBlobStore, type BlobStoreConfig } from '../../src/blobs/index.ts';
import { digestOf, parseDigest } from '../../src/blobs/digest.ts';
import { BlobNotFoundError, BlobStoreError, DigestMismatchError, InvalidDigestError, SizeMismatchError, TooLargeError } from '../../src/blobs/errors.ts';
import type { BlobStore } from '../../src/blobs/types.ts';
import {
  bufferStream,
  hashStream,
  listDigests,
  patternBytes,
  patternDigest,
  patternStream,
  readAll,
  runBlobStoreSuite,
  type BlobStoreFixture,
} from './suite.ts';

const MiB = 1024 * 1024;

async function tempRoot(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'granary-blobs-'));
}

async function plant(root: string, ageMs: number, name = `planted-${randomUUID()}`): Promise<string> {
  const path = join(root, '_tmp', name);
  await mkdir(join(root, '_tmp'), { recursive: true });
  await writeFile(path, 'partial bytes');
  const when = new Date(Date.now() - ageMs);
  await utimes(path, when, when);
  return name;
}

async function fsFixture(): Promise<BlobStoreFixture> {
  const root = await tempRoot();
  const store = await createBlobStore({ driver: 'fs', root });
  return {
    store,
    cleanup: () => rm(root, { recursive: true, force: true }),
    tempObjects: () => readdir(join(root, '_tmp')),
    plantTempObject: async (ageMs) => void (await plant(root, ageMs)),
  };
}

/** Every entry under `root`, relative, directories with a trailing slash, sorted. */
async function walk(root: string, dir = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(root, dir), { withFileTypes: true })) {
    const rel = dir === '' ? entry.name : `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(`${rel}/`, ...(await walk(root, rel)));
    else out.push(rel);
  }
  return out.sort();
}

const EMPTY_LAYOUT = ['_tmp/', '_uploads/', 'sha256/', 'sha512/'];

runBlobStoreSuite('fs', fsFixture);

describe('fs blob store', () => {
  let root: string;
  let store: BlobStore;
  const open = async (config: Partial<BlobStoreConfig> = {}) => {
    store = await createBlobStore({ driver: 'fs', root, ...config } as BlobStoreConfig);
    return store;
  };

  it('lays blobs out by algorithm and 2-hex shard, sessions under _uploads', async () => {
    root = await tempRoot();
    try {
      await open();
      assert.deepEqual(await walk(root), EMPTY_LAYOUT);
      const d256 = (await store.put(bufferStream('layout'))).digest;
      const d512 = digestOf('layout', 'sha512');
      await store.put(bufferStream('layout'), { expectedDigest: d512 });
      await store.uploads.create('session-1');
      const h256 = parseDigest(d256).hex;
      const h512 = parseDigest(d512).hex;
      assert.deepEqual(
        await walk(root),
        [
          ...EMPTY_LAYOUT,
          '_uploads/session-1',
          `sha256/${h256.slice(0, 2)}/`,
          `sha256/${h256.slice(0, 2)}/${h256}`,
          `sha512/${h512.slice(0, 2)}/`,
          `sha512/${h512.slice(0, 2)}/${h512}`,
        ].sort(),
      );
      assert.equal(await readFile(join(root, 'sha256', h256.slice(0, 2), h256), 'utf8'), 'layout');
    } finally {
      await store.close();
      await rm(root, { recursive: true, force: true });
    }
  });

  it('leaves no stray files after failed writes, uploads and commits', async () => {
    root = await tempRoot();
    try {
      await open();
      const boom = new Error('boom');
      await assert.rejects(store.put(bufferStream('a'), { expectedDigest: digestOf('b') }), DigestMismatchError);
      await assert.rejects(store.put(patternStream(4 * MiB), { maxBytes: MiB }), TooLargeError);
      await assert.rejects(store.put(patternStream(4 * MiB, { failAfter: 2 * MiB, failWith: boom })), (e) => e === boom);
      const controller = new AbortController();
      const stalled = patternStream(4 * MiB, { stallAfter: MiB, onStall: () => controller.abort() });
      await assert.rejects(store.put(stalled, { signal: controller.signal }), { name: 'AbortError' });
      await store.uploads.create('session-1');
      await store.uploads.append('session-1', bufferStream('abc'), { offset: 0 });
      await assert.rejects(
        store.uploads.append('session-1', patternStream(2 * MiB, { failAfter: MiB, failWith: boom }), { offset: 3 }),
        (e) => e === boom,
      );
      await assert.rejects(store.uploads.commit('session-1', digestOf('abd')), DigestMismatchError);
      assert.deepEqual(await walk(root), EMPTY_LAYOUT);
    } finally {
      await store.close();
      await rm(root, { recursive: true, force: true });
    }
  });

  it('sweeps temp files older than the threshold at start', async () => {
    root = await tempRoot();
    try {
      const old = await plant(root, 2 * 60 * 60 * 1000);
      const young = await plant(root, 60 * 1000);
      await open({ sweepOnStart: false });
      assert.deepEqual((await readdir(join(root, '_tmp'))).sort(), [old, young].sort());
      await open();
      assert.deepEqual(await readdir(join(root, '_tmp')), [young]);
      await open({ tempMaxAgeMs: 30 * 1000 });
      assert.deepEqual(await readdir(join(root, '_tmp')), []);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('continues an upload session in a new store instance and re-hashes it at commit', async () => {
    root = await tempRoot();
    try {
      const first = await open();
      await first.uploads.create('session-1');
      await first.uploads.append('session-1', patternStream(MiB, { seed: 40 }), { offset: 0 });
      await first.close();

      const second = await open(); // a restart: no in-process hash state
      assert.equal(await second.uploads.size('session-1'), MiB);
      await second.uploads.append('session-1', patternStream(MiB, { seed: 40, start: MiB }), { offset: MiB });
      const digest = patternDigest(2 * MiB, { seed: 40 });
      assert.deepEqual(await second.uploads.commit('session-1', digest), { digest, size: 2 * MiB, created: true });
      assert.deepEqual(await hashStream(await second.open(digest)), { digest, size: 2 * MiB });

      // a session appended by "another node" behind this store's back is re-hashed, not trusted
      await second.uploads.create('session-2');
      await second.uploads.append('session-2', bufferStream('abc'), { offset: 0 });
      await writeFile(join(root, '_uploads', 'session-2'), 'abX');
      await assert.rejects(second.uploads.commit('session-2', digestOf('abc')), DigestMismatchError);
      assert.deepEqual(await listDigests(second), [digest]);
    } finally {
      await store.close();
      await rm(root, { recursive: true, force: true });
    }
  });

  it('wraps stray filesystem errors in a BlobStoreError naming the driver', async () => {
    root = await tempRoot();
    try {
      await open();
      await rmdir(join(root, '_tmp'));
      await writeFile(join(root, '_tmp'), 'not a directory');
      await assert.rejects(store.put(bufferStream('x')), (err) => {
        assert.ok(err instanceof BlobStoreError);
        assert.equal(err.code, 'BLOB_STORE_ERROR');
        assert.equal(err.driver, 'fs');
        assert.equal((err.cause as { code?: string }).code, 'ENOTDIR');
        return true;
      });
    } finally {
      await store.close();
      await rm(root, { recursive: true, force: true });
    }
  });

  it('ignores foreign entries in blob directories', async () => {
    root = await tempRoot();
    try {
      await open();
      await mkdir(join(root, 'sha256', 'zz'));
      await mkdir(join(root, 'sha256', 'ab'));
      await writeFile(join(root, 'sha256', 'zz', 'junk'), '');
      await writeFile(join(root, 'sha256', 'ab', 'ab12'), '');
      await writeFile(join(root, 'sha256', 'ab', `cd${'0'.repeat(62)}`), ''); // wrong shard
      await writeFile(join(root, '_uploads', 'x'), ''); // not a valid session id
      assert.deepEqual(await listDigests(store), []);
      const uploads = [];
      for await (const u of store.uploads.list()) uploads.push(u);
      assert.deepEqual(uploads, []);
    } finally {
      await store.close();
      await rm(root, { recursive: true, force: true });
    }
  });

  it('keeps serving an open stream after the blob is deleted', async () => {
    root = await tempRoot();
    try {
      await open();
      const size = 3 * MiB;
      const { digest } = await store.put(patternStream(size, { seed: 41 }));
      const stream = await store.open(digest);
      assert.equal(await store.delete(digest), true);
      assert.deepEqual(await hashStream(stream), { digest, size });
    } finally {
      await store.close();
      await rm(root, { recursive: true, force: true });
    }
  });

  it('reports bytes and operations to the metrics hooks', async () => {
    root = await tempRoot();
    try {
      let bytesIn = 0;
      let bytesOut = 0;
      const ops: string[] = [];
      await open({
        sweepOnStart: false,
        hooks: {
          onBytesIn: (n) => (bytesIn += n),
          onBytesOut: (n) => (bytesOut += n),
          onOperation: (e) => ops.push(`${e.op}${e.error === undefined ? '' : '!'}`),
        },
      });
      const { digest } = await store.put(bufferStream('metrics'));
      assert.equal((await readAll(await store.open(digest, { range: { start: 2 } }))).toString(), 'trics');
      await assert.rejects(store.put(bufferStream('x'), { expectedDigest: digestOf('y') }));
      assert.equal(bytesIn, 7);
      assert.equal(bytesOut, 5);
      assert.deepEqual(ops, ['put', 'open', 'put!']);
    } finally {
      await store.close();
      await rm(root, { recursive: true, force: true });
    }
  });
  it('opens blobs for positional reads (openFile): typed errors, size from the file, bytes out counted on close', async () => {
    root = await tempRoot();
    try {
      let bytesOut = 0;
      await open({ sweepOnStart: false, hooks: { onBytesOut: (n) => (bytesOut += n) } });
      const size = 2 * MiB + 17;
      const { digest } = await store.put(patternStream(size, { seed: 7 }));
      const file = await store.openFile!(digest);
      assert.equal(file.size, size);
      const buf = Buffer.alloc(100);
      assert.equal(await file.read(buf, 0, 100, MiB - 50), 100);
      assert.deepEqual(buf, patternBytes(7, MiB - 50, 100));
      assert.equal(await file.read(buf, 0, 100, size - 10), 10, 'a read past the end is short');
      assert.equal(await file.read(buf, 0, 100, size), 0);
      await file.close();
      await file.close(); // idempotent
      assert.equal(bytesOut, 110);
      await assert.rejects(store.openFile!(digestOf('absent')), BlobNotFoundError);
      await assert.rejects(store.openFile!('sha256:../../etc/passwd'), InvalidDigestError);
    } finally {
      await store.close();
      await rm(root, { recursive: true, force: true });
    }
  });
  it('adopts a local file as a blob (linked, not copied); refuses a wrong size; another filesystem is copied', async () => {
    root = await tempRoot();
    const shm = existsSync('/dev/shm') ? await mkdtemp('/dev/shm/granary-adopt-') : null;
    try {
      await open({ sweepOnStart: false });
      const body = Buffer.from('adopted bytes');
      const digest = digestOf(body);
      const src = join(root, 'spool-1');
      await writeFile(src, body, { mode: 0o600 });
      const ino = (await stat(src)).ino;
      assert.deepEqual(await store.adoptFile!(src, { digest, size: body.length }), { digest, size: body.length, created: true });
      assert.equal(existsSync(src), false, 'the source name is gone');
      const blobPath = join(root, 'sha256', parseDigest(digest).hex.slice(0, 2), parseDigest(digest).hex);
      assert.equal((await stat(blobPath)).ino, ino, 'linked into place, not copied');
      assert.equal((await stat(blobPath)).mode & 0o777, 0o644);
      assert.equal((await readAll(await store.open(digest))).toString(), 'adopted bytes');

      const again = join(root, 'spool-2');
      await writeFile(again, body);
      assert.equal((await store.adoptFile!(again, { digest, size: body.length })).created, false);

      const short = join(root, 'spool-3');
      await writeFile(short, 'abc');
      await assert.rejects(store.adoptFile!(short, { digest: digestOf('abcd'), size: 4 }), SizeMismatchError);
      assert.equal(await store.stat(digestOf('abcd')), null);
      await assert.rejects(store.adoptFile!(short, { digest: 'sha256:nope', size: 3 }), InvalidDigestError);

      if (shm === null || (await stat(shm)).dev === (await stat(root)).dev) {
        return void process.stdout.write('# skipped the cross-filesystem part: no /dev/shm on another filesystem\n');
      }
      const far = join(shm, 'spool');
      await writeFile(far, 'far away');
      assert.equal((await store.adoptFile!(far, { digest: digestOf('far away'), size: 8 })).created, true);
      assert.equal(existsSync(far), false);
      assert.equal((await readAll(await store.open(digestOf('far away')))).toString(), 'far away');
      // Copied means verified: a file that does not hash to the digest claimed is refused.
      await writeFile(far, 'tampered');
      await assert.rejects(store.adoptFile!(far, { digest: digestOf('original'), size: 8 }), DigestMismatchError);
      assert.equal(await store.stat(digestOf('original')), null);
    } finally {
      await store.close();
      await rm(root, { recursive: true, force: true });
      if (shm !== null) await rm(shm, { recursive: true, force: true });
    }
  });
});
