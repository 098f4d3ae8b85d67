/**
 * The s3 driver: the shared conformance suite against a real S3-protocol server (s3rver on loopback, one bucket,
 * a fresh key prefix per test), plus what only S3 can show (key layout, no stray objects after failures, one
 * upload session continued by three "nodes", the start sweep, configuration errors).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createBlobStore, type BlobStoreConfig } from '../../src/blobs/index.ts';
import { digestOf, parseDigest } from '../../src/blobs/digest.ts';
import { BlobStoreError, DigestMismatchError, TooLargeError } from '../../src/blobs/errors.ts';
import type { BlobStore } from '../../src/blobs/types.ts';
import { listObjects, type S3Context } from '../../src/blobs/s3-common.ts';
import { s3DriverSettings, startTestS3, type TestS3 } from '../helpers/s3.ts';
import {
  bufferStream,
  hashStream,
  patternDigest,
  patternStream,
  readAll,
  runBlobStoreSuite,
  type BlobStoreFixture,
} from './suite.ts';

const MiB = 1024 * 1024;
const s3 = await startTestS3();
const skipReason = typeof s3 === 'string' ? s3 : undefined;
if (typeof s3 !== 'string') after(() => s3.stop());

function config(server: TestS3, prefix: string, extra: Partial<BlobStoreConfig> = {}): BlobStoreConfig {
  return { driver: 's3', ...s3DriverSettings(server), prefix, ...extra } as BlobStoreConfig;
}

/** A raw client on the test server, to look at (and plant) objects behind the store's back. */
function rawClient(server: TestS3): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Every key under `prefix`, relative to it, sorted. */
async function keys(server: TestS3, prefix: string): Promise<string[]> {
  const client = rawClient(server);
  const out: string[] = [];
  const ctx = { client, bucket: server.bucket } as S3Context; // listObjects reads only these two
  for await (const o of listObjects(ctx, prefix)) out.push(o.key.slice(prefix.length));
  client.destroy();
  return out.sort();
}

async function removeAll(server: TestS3, prefix: string): Promise<void> {
  const client = rawClient(server);
  for (const key of await keys(server, prefix)) {
    await client.send(new DeleteObjectCommand({ Bucket: server.bucket, Key: `${prefix}${key}` }));
  }
  client.destroy();
}

async function plant(server: TestS3, prefix: string, ageMs: number): Promise<string> {
  const key = `${prefix}_tmp/planted-${randomUUID()}`;
  const client = rawClient(server);
  await client.send(new PutObjectCommand({ Bucket: server.bucket, Key: key, Body: 'partial bytes' }));
  client.destroy();
  await server.ageObject(key, ageMs);
  return key.slice(prefix.length);
}

if (typeof s3 === 'string') {
  describe('blob store conformance: s3', () => {
    it('runs against s3rver', { skip: skipReason }, () => {});
  });
} else {
  const server = s3;
  const s3Fixture = async (): Promise<BlobStoreFixture> => {
    const prefix = `t-${randomUUID()}/`;
    const store = await createBlobStore(config(server, prefix));
    return {
      store,
      cleanup: () => removeAll(server, prefix),
      tempObjects: () => keys(server, `${prefix}_tmp/`),
      plantTempObject: async (ageMs) => void (await plant(server, prefix, ageMs)),
    };
  };

  runBlobStoreSuite('s3', s3Fixture);

  describe('s3 blob store', () => {
    let prefix: string;
    let store: BlobStore;
    const open = async (extra: Partial<BlobStoreConfig> = {}) => {
      store = await createBlobStore(config(server, prefix, extra));
      return store;
    };
    const fresh = () => (prefix = `t-${randomUUID()}/`);

    it('lays blobs out by algorithm and 2-hex shard, sessions under _uploads', async () => {
      fresh();
      try {
        await open();
        const d256 = (await store.put(bufferStream('layout'))).digest;
        const d512 = digestOf('layout', 'sha512');
        await store.put(bufferStream('layout'), { expectedDigest: d512 });
        await store.uploads.create('session-1');
        await store.uploads.append('session-1', bufferStream('abc'), { offset: 0 });
        await store.uploads.append('session-1', bufferStream(''), { offset: 3 });
        await store.uploads.append('session-1', bufferStream('de'), { offset: 3 });
        const h256 = parseDigest(d256).hex;
        const h512 = parseDigest(d512).hex;
        assert.deepEqual(
          await keys(server, prefix),
          [
            '_uploads/session-1/0000000000000000',
            '_uploads/session-1/0000000000000003',
            '_uploads/session-1/_meta',
            `sha256/${h256.slice(0, 2)}/${h256}`,
            `sha512/${h512.slice(0, 2)}/${h512}`,
          ].sort(),
        );
        await store.uploads.abort('session-1');
      } finally {
        await store.close();
        await removeAll(server, prefix);
      }
    });

    it('leaves no stray objects after failed writes, uploads and commits (multipart included)', async () => {
      fresh();
      try {
        await open({ partSize: 5 * MiB });
        const boom = new Error('boom');
        await assert.rejects(store.put(bufferStream('a'), { expectedDigest: digestOf('b') }), DigestMismatchError);
        await assert.rejects(store.put(patternStream(12 * MiB), { maxBytes: 11 * MiB }), TooLargeError);
        await assert.rejects(store.put(patternStream(16 * MiB, { failAfter: 12 * MiB, failWith: boom })), (e) => e === boom);
        await assert.rejects(store.put(patternStream(12 * MiB), { expectedDigest: digestOf('c') }), DigestMismatchError);
        const controller = new AbortController();
        const stalled = patternStream(16 * MiB, { stallAfter: 11 * MiB, onStall: () => controller.abort() });
        await assert.rejects(store.put(stalled, { signal: controller.signal }), { name: 'AbortError' });
        await store.uploads.create('session-1');
        await store.uploads.append('session-1', bufferStream('abc'), { offset: 0 });
        await assert.rejects(
          store.uploads.append('session-1', patternStream(12 * MiB, { failAfter: 11 * MiB, failWith: boom }), { offset: 3 }),
          (e) => e === boom,
        );
        await assert.rejects(store.uploads.commit('session-1', digestOf('abd')), DigestMismatchError);
        assert.deepEqual(await keys(server, prefix), []);
      } finally {
        await store.close();
        await removeAll(server, prefix);
      }
    });

    it('dedups onto an old blob: created:false, the blob intact, the temp object gone', async () => {
      fresh();
      try {
        await open();
        const { digest } = await store.put(bufferStream('old blob'));
        const key = `${prefix}sha256/${parseDigest(digest).hex.slice(0, 2)}/${parseDigest(digest).hex}`;
        await server.ageObject(key, 24 * 60 * 60 * 1000); // old enough to be touched (s3rver keeps its mtime)
        assert.deepEqual(await store.put(bufferStream('old blob')), { digest, size: 8, created: false });
        assert.equal((await readAll(await store.open(digest))).toString(), 'old blob');
        assert.deepEqual(await keys(server, prefix), [key.slice(prefix.length)]);
      } finally {
        await store.close();
        await removeAll(server, prefix);
      }
    });

    it('continues one upload session across three store instances (nodes)', async () => {
      fresh();
      const nodes: BlobStore[] = [];
      try {
        for (let i = 0; i < 3; i++) nodes.push(await createBlobStore(config(server, prefix)));
        const [a, b, c] = nodes;
        await a.uploads.create('session-1');
        await a.uploads.append('session-1', patternStream(6 * MiB, { seed: 40 }), { offset: 0 });
        assert.equal(await b.uploads.size('session-1'), 6 * MiB);
        await b.uploads.append('session-1', patternStream(MiB + 1, { seed: 40, start: 6 * MiB }), { offset: 6 * MiB });
        const total = 7 * MiB + 1;
        const digest = patternDigest(total, { seed: 40 });
        assert.deepEqual(await c.uploads.commit('session-1', digest, { expectedSize: total }), {
          digest,
          size: total,
          created: true,
        });
        assert.deepEqual(await hashStream(await a.open(digest)), { digest, size: total });
        assert.equal(await b.uploads.size('session-1'), null);
        assert.equal(await a.delete(digest), true);
        assert.deepEqual(await keys(server, prefix), []);
      } finally {
        for (const n of nodes) await n.close();
        await removeAll(server, prefix);
      }
    });

    it('sweeps temp objects older than the threshold at start', async () => {
      fresh();
      try {
        const old = await plant(server, prefix, 2 * 60 * 60 * 1000);
        const young = await plant(server, prefix, 60 * 1000);
        await (await open({ sweepOnStart: false })).close();
        assert.deepEqual(await keys(server, prefix), [old, young].sort());
        await (await open()).close();
        assert.deepEqual(await keys(server, prefix), [young]);
        await (await open({ tempMaxAgeMs: 30 * 1000 })).close();
        assert.deepEqual(await keys(server, prefix), []);
      } finally {
        await removeAll(server, prefix);
      }
    });

    it('wraps backend errors in a BlobStoreError naming the driver', async () => {
      await assert.rejects(createBlobStore(config(server, 'x/', { bucket: 'no-such-bucket' } as Partial<BlobStoreConfig>)), (err) => {
        assert.ok(err instanceof BlobStoreError);
        assert.equal(err.code, 'BLOB_STORE_ERROR');
        assert.equal(err.driver, 's3');
        assert.equal((err.cause as { name?: string }).name, 'NoSuchBucket');
        return true;
      });
    });

    it('refuses incomplete configuration', async () => {
      await assert.rejects(createBlobStore({ driver: 's3', bucket: '' }), TypeError);
      await assert.rejects(createBlobStore(config(server, 'x/', { partSize: MiB } as Partial<BlobStoreConfig>)), RangeError);
      await assert.rejects(
        createBlobStore({ driver: 's3', bucket: 'b', accessKeyId: 'only-the-id' } as BlobStoreConfig),
        /go together/,
      );
    });
  });
}
