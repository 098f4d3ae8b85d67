/**
 * Presigned redirects (`blobs.s3.redirect`): blob GETs are answered 307 to a presigned URL of the bucket
 * (s3rver on loopback), so the bytes bypass the node. Clients follow the redirect (fetch, and skopeo when
 * installed); HEAD, conditional requests, unsatisfiable ranges and permission checks stay on the node; ranges
 * are honoured by the bucket.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { missingClient, writeOciLayout } from '../clients/oci-layout.ts';
import { runTool } from '../clients/run-tool.ts';
import { ADMIN_TOKEN, startServer, type TestServer } from '../helpers/server.ts';
import { s3DriverSettings, startTestS3, type TestS3 } from '../helpers/s3.ts';
import { pushBlob, randomBlob, sha256 } from './oci-push.ts';
import type { Node } from './cluster.ts';

const s3 = await startTestS3('granary-redirect');

describe('presigned blob redirects', { skip: typeof s3 === 'string' ? s3 : false }, () => {
  const t = s3 as TestS3;
  let srv: TestServer;
  let work: string;
  const blob = randomBlob(200_000);
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'granary-redirect-'));
    srv = await startServer({
      config: {
        blobs: {
          driver: 's3',
          s3: { ...s3DriverSettings(t), redirect: true, redirectExpirySeconds: 120 },
        },
      },
    });
    await srv.api('POST', '/repositories', { name: 'images', format: 'oci' });
    await srv.api('POST', '/repositories', { name: 'files', format: 'generic' });
    await pushBlob({ fetch: srv.fetch } as Node, 'images/app', blob);
  });
  after(async () => {
    await srv?.close();
    await t.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('answers an OCI blob GET with 307 to a short-lived presigned URL of the bucket', async () => {
    const res = await srv.fetch(`/v2/images/app/blobs/${blob.digest}`, { redirect: 'manual' });
    assert.equal(res.status, 307);
    assert.equal(res.headers.get('docker-content-digest'), blob.digest);
    const location = new URL(res.headers.get('location')!);
    assert.equal(location.origin, t.endpoint);
    assert.equal(location.searchParams.get('X-Amz-Expires'), '120');
    assert.ok(location.searchParams.get('X-Amz-Signature'));
    // The URL alone is the credential: no Authorization header is needed (nor sent, cross-origin).
    const direct = await fetch(location);
    assert.equal(direct.status, 200);
    assert.equal(sha256(Buffer.from(await direct.arrayBuffer())), blob.digest);
    // (s3rver does not verify SigV4 signatures, so refusing a forged URL is left to real servers.)
  });

  it('serves the bytes to a client that follows the redirect, ranges included', async () => {
    const full = await srv.fetch(`/v2/images/app/blobs/${blob.digest}`);
    assert.equal(full.status, 200);
    assert.ok(Buffer.from(await full.arrayBuffer()).equals(blob.bytes));
    const part = await srv.fetch(`/v2/images/app/blobs/${blob.digest}`, { headers: { range: 'bytes=1000-1999' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 1000-1999/${blob.bytes.length}`);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(blob.bytes.subarray(1000, 2000)));
  });

  it('keeps HEAD, 304, 416 and permission checks on the node', async () => {
    const head = await srv.fetch(`/v2/images/app/blobs/${blob.digest}`, { method: 'HEAD', redirect: 'manual' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(blob.bytes.length));
    assert.equal(head.headers.get('docker-content-digest'), blob.digest);
    const cached = await srv.fetch(`/v2/images/app/blobs/${blob.digest}`, { headers: { 'if-none-match': `"${blob.digest}"` }, redirect: 'manual' });
    assert.equal(cached.status, 304);
    const beyond = await srv.fetch(`/v2/images/app/blobs/${blob.digest}`, { headers: { range: `bytes=${blob.bytes.length}-` }, redirect: 'manual' });
    assert.equal(beyond.status, 416);
    const anonymous = await srv.fetch(`/v2/images/app/blobs/${blob.digest}`, { auth: null, redirect: 'manual' });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers.get('location'), null);
    const missing = await srv.fetch(`/v2/images/app/blobs/sha256:${'0'.repeat(64)}`, { redirect: 'manual' });
    assert.equal(missing.status, 404);
  });

  it('redirects generic downloads with their content type', async () => {
    assert.equal((await srv.fetch('/generic/files/notes.txt', { method: 'PUT', body: 'plain words', headers: { 'content-type': 'text/plain' } })).status, 201);
    const res = await srv.fetch('/generic/files/notes.txt', { redirect: 'manual' });
    assert.equal(res.status, 307);
    const got = await fetch(res.headers.get('location')!);
    assert.equal(await got.text(), 'plain words');
    assert.match(got.headers.get('content-type') ?? '', /^text\/plain/);
  });

  it('lets skopeo pull through the redirect', { skip: missingClient('skopeo') }, async () => {
    const src = await writeOciLayout(join(work, 'layout'), { tag: 'v1', layers: 2, seed: 'redirect' });
    const host = new URL(srv.url).host;
    const authFile = join(work, 'auth.json');
    const creds = `admin:${ADMIN_TOKEN}`;
    const push = await runTool('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', creds, src.ref, `docker://${host}/images/skopeo:v1`], { authFile });
    assert.equal(push.code, 0, push.stderr);
    const back = join(work, 'back');
    const pull = await runTool('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/images/skopeo:v1`, `oci:${back}:v1`], { authFile });
    assert.equal(pull.code, 0, pull.stderr);
    for (const d of src.blobs) {
      const file = join(back, 'blobs', 'sha256', d.slice('sha256:'.length));
      assert.ok(existsSync(file), `blob ${d}`);
      assert.equal(sha256(await readFile(file)), d);
    }
  });
});
