/**
 * The whole server on the S3 driver: config keys reach the driver, and generic files and an OCI blob upload go
 * through S3-compatible storage (s3rver on loopback) exactly as through the filesystem, as does a blob cached by
 * an OCI proxy repository (whose spool file is copied into the bucket rather than adopted).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer, type TestServer } from '../helpers/server.ts';
import { s3DriverSettings, startTestS3, type TestS3 } from '../helpers/s3.ts';

const s3 = await startTestS3('granary-server');

describe('server on the s3 blob driver', { skip: typeof s3 === 'string' ? s3 : false }, () => {
  let srv: TestServer;
  before(async () => {
    const t = s3 as TestS3;
    srv = await startServer({
      config: { blobs: { driver: 's3', s3: { ...s3DriverSettings(t), prefix: 'srv/' } } },
    });
    await srv.api('POST', '/repositories', { name: 'files', format: 'generic' });
    await srv.api('POST', '/repositories', { name: 'images', format: 'oci' });
  });
  after(async () => {
    await srv?.close();
    await (s3 as TestS3).stop();
  });

  it('stores, serves ranges of and deletes generic files', async () => {
    const body = Buffer.alloc(3 * 1024 * 1024 + 17, 'x');
    body.write('head', 0);
    const put = await srv.fetch('/generic/files/a/big.bin', { method: 'PUT', body });
    assert.equal(put.status, 201);
    const part = await srv.fetch('/generic/files/a/big.bin', { headers: { range: 'bytes=0-3' } });
    assert.equal(part.status, 206);
    assert.equal(await part.text(), 'head');
    const full = Buffer.from(await (await srv.fetch('/generic/files/a/big.bin')).arrayBuffer());
    assert.ok(full.equals(body));
    assert.equal((await srv.fetch('/readyz', { auth: null })).status, 200);
  });

  it('takes a chunked OCI blob upload', async () => {
    const blob = Buffer.from('layer bytes on s3');
    const digest = 'sha256:' + createHash('sha256').update(blob).digest('hex');
    const start = await srv.fetch('/v2/images/app/blobs/uploads/', { method: 'POST' });
    assert.equal(start.status, 202);
    const loc = start.headers.get('location')!;
    const patch = await srv.fetch(loc, { method: 'PATCH', body: blob.subarray(0, 5), headers: { 'content-type': 'application/octet-stream', 'content-range': '0-4' } });
    assert.equal(patch.status, 202);
    const next = patch.headers.get('location')!;
    const sep = next.includes('?') ? '&' : '?';
    const done = await srv.fetch(`${next}${sep}digest=${encodeURIComponent(digest)}`, { method: 'PUT', body: blob.subarray(5), headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(done.status, 201, await done.text());
    const got = await srv.fetch(`/v2/images/app/blobs/${digest}`);
    assert.equal(Buffer.from(await got.arrayBuffer()).toString(), 'layer bytes on s3');
  });

  it('caches a blob pulled through an OCI proxy in the bucket (the spool is copied, not adopted)', async () => {
    const up = await startServer();
    try {
      await up.api('POST', '/repositories', { name: 'src', format: 'oci', anonymousRead: true });
      const blob = Buffer.alloc(2 * 1024 * 1024 + 5, 'p');
      const digest = 'sha256:' + createHash('sha256').update(blob).digest('hex');
      const start = await up.fetch('/v2/src/app/blobs/uploads/', { method: 'POST' });
      const loc = start.headers.get('location')!;
      const put = await up.fetch(`${loc}${loc.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`, { method: 'PUT', body: blob });
      assert.equal(put.status, 201);
      assert.equal((await srv.api('POST', '/repositories', { name: 'mirror', format: 'oci', kind: 'proxy', upstream: up.url })).status, 201);
      const got = await srv.fetch(`/v2/mirror/src/app/blobs/${digest}`);
      assert.equal(got.status, 200, await got.clone().text());
      assert.ok(Buffer.from(await got.arrayBuffer()).equals(blob));
      await up.close();
      for (let i = 0; i < 100 && (await srv.services.blobs.stat(digest)) === null; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal((await srv.services.blobs.stat(digest))?.size, blob.length, 'stored in the bucket');
      assert.deepEqual(await readdir(join(srv.dataDir, 'proxy-spool')), []);
      const cached = await srv.fetch(`/v2/mirror/src/app/blobs/${digest}`);
      assert.equal(cached.status, 200, 'served from the cache with the upstream gone');
      assert.ok(Buffer.from(await cached.arrayBuffer()).equals(blob));
    } finally {
      await up.close();
    }
  });
});
