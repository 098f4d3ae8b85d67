/**
 * Multipart copy (UploadPartCopy) of the s3 driver, which lets blobs over 5 GiB be published: the threshold is
 * lowered so a 12 MiB blob takes that path. s3rver does not implement UploadPartCopy, so this runs on moto's
 * S3 server (skips, naming it, when moto_server is missing): the whole conformance suite with every publish a
 * multipart copy, plus checks that the copy really was multipart and that a failed copy leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { DeleteObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createBlobStore, type BlobStoreConfig } from '../../src/blobs/index.ts';
import { parseDigest } from '../../src/blobs/digest.ts';
import { copyKey, copyPartSizeFor, MAX_OBJECT_BYTES } from '../../src/blobs/s3-copy.ts';
import { s3Layout, type S3Context } from '../../src/blobs/s3-common.ts';
import { startMoto, type TestMoto } from './moto.ts';
import { s3DriverSettings } from '../helpers/s3.ts';
import { hashStream, patternDigest, patternStream, runBlobStoreSuite, type BlobStoreFixture } from './suite.ts';

const MiB = 1024 * 1024;
const moto = await startMoto();
if (typeof moto !== 'string') after(() => moto.stop());

function config(server: TestMoto, prefix: string, extra: Partial<BlobStoreConfig> = {}): BlobStoreConfig {
  return { driver: 's3', ...s3DriverSettings(server), prefix, partSize: 5 * MiB, copyPartSize: 5 * MiB, ...extra } as BlobStoreConfig;
}

async function keys(server: TestMoto, prefix: string): Promise<string[]> {
  const c = server.client();
  const res = await c.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: prefix }));
  c.destroy();
  return (res.Contents ?? []).map((o) => o.Key!.slice(prefix.length)).sort();
}

async function removeAll(server: TestMoto, prefix: string): Promise<void> {
  const c = server.client();
  for (const k of await keys(server, prefix)) await c.send(new DeleteObjectCommand({ Bucket: server.bucket, Key: prefix + k }));
  c.destroy();
}

it('grows the copy part size so no object needs more than 10 000 parts', () => {
  assert.equal(copyPartSizeFor(12 * MiB, 5 * MiB), 5 * MiB);
  const big = MAX_OBJECT_BYTES; // 5 TiB in 512 MiB parts would be 10 240 parts
  const part = copyPartSizeFor(big, 512 * MiB);
  assert.ok(part > 512 * MiB);
  assert.ok(Math.ceil(big / part) <= 10_000);
});

if (typeof moto === 'string') {
  describe('s3 multipart copy', () => {
    it('runs against moto_server', { skip: moto }, () => {});
  });
} else {
  const server = moto;
  // Threshold 0: every publish in the suite is a multipart copy (one part for small blobs).
  runBlobStoreSuite('s3 (multipart copy)', async (): Promise<BlobStoreFixture> => {
    const prefix = `suite-${randomUUID()}/`;
    const store = await createBlobStore(config(server, prefix, { multipartCopyThreshold: 0 }));
    return { store, cleanup: () => removeAll(server, prefix), tempObjects: () => keys(server, `${prefix}_tmp/`) };
  });

  describe('s3 multipart copy', () => {
    it('publishes a blob above the threshold in 5 MiB UploadPartCopy parts', async () => {
      const prefix = `big-${randomUUID()}/`;
      const store = await createBlobStore(config(server, prefix, { multipartCopyThreshold: 6 * MiB }));
      try {
        const size = 12 * MiB + 3;
        const digest = patternDigest(size, { seed: 7 });
        const put = await store.put(patternStream(size, { seed: 7 }), { expectedDigest: digest });
        assert.deepEqual(put, { digest, size, created: true });
        // A multipart object's ETag is "<md5 of part md5s>-<part count>": three parts, so it was copied in parts.
        const c = server.client();
        const head = await c.send(new HeadObjectCommand({ Bucket: server.bucket, Key: s3Layout(prefix).blob(parseDigest(digest)) }));
        c.destroy();
        assert.match(head.ETag ?? '', /-3"$/);
        assert.equal(head.ContentLength, size);
        assert.deepEqual(await hashStream(await store.open(digest)), { digest, size });
        const tail = await hashStream(await store.open(digest, { range: { start: 10 * MiB } }));
        assert.equal(tail.digest, patternDigest(2 * MiB + 3, { seed: 7, start: 10 * MiB }));

        const small = patternDigest(1000, { seed: 8 });
        await store.put(patternStream(1000, { seed: 8 }));
        const c2 = server.client();
        const smallHead = await c2.send(new HeadObjectCommand({ Bucket: server.bucket, Key: s3Layout(prefix).blob(parseDigest(small)) }));
        c2.destroy();
        assert.doesNotMatch(smallHead.ETag ?? '', /-\d+"$/, 'below the threshold: one CopyObject');
        assert.deepEqual((await keys(server, prefix)).filter((k) => k.startsWith('_tmp/')), []);
      } finally {
        await store.close();
        await removeAll(server, prefix);
      }
    });

    it('leaves no target and no multipart upload when a part copy fails', async () => {
      const prefix = `fail-${randomUUID()}/`;
      const client = server.client();
      const ctx: S3Context = {
        client,
        bucket: server.bucket,
        layout: s3Layout(prefix),
        active: new Set(),
        partSize: 5 * MiB,
        queueSize: 2,
        copyThreshold: 0,
        copyPartSize: 5 * MiB,
      };
      try {
        // The source does not exist: UploadPartCopy fails after CreateMultipartUpload succeeded.
        await assert.rejects(copyKey(ctx, `${prefix}missing`, `${prefix}target`, 12 * MiB));
        assert.deepEqual(await keys(server, prefix), []);
        const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: server.bucket, Prefix: prefix }));
        assert.deepEqual(uploads.Uploads ?? [], []);
        assert.equal(ctx.active.size, 0);
      } finally {
        client.destroy();
      }
    });
  });
}
