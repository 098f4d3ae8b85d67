/** /healthz, /readyz, /metrics, request ids and the OpenAPI document. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer, type TestServer } from '../helpers/server.ts';

describe('health, metrics, openapi', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv.close());

  it('healthz answers without credentials', async () => {
    const r = await srv.fetch('/healthz', { auth: null });
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { status: 'ok' });
  });

  it('readyz checks the database and the blob store', async () => {
    const r = await srv.fetch('/readyz', { auth: null });
    assert.equal(r.status, 200);
    const body = (await r.json()) as { checks: Record<string, { ok: boolean }> };
    assert.equal(body.checks.database.ok, true);
    assert.equal(body.checks.blobs.ok, true);
  });

  it('readyz reports 503 when the blob store is unusable', async () => {
    // A file where the store expects its sha256 directory: every lookup fails (ENOTDIR), even for root.
    const dir = join(srv.dataDir, 'blobs', 'sha256');
    await rename(dir, dir + '.away');
    await writeFile(dir, 'not a directory');
    await new Promise((r) => setTimeout(r, 2_100)); // past the readiness cache
    try {
      const r = await srv.fetch('/readyz', { auth: null });
      assert.equal(r.status, 503);
      const body = (await r.json()) as { checks: Record<string, { ok: boolean }> };
      assert.equal(body.checks.blobs.ok, false);
      assert.equal(body.checks.database.ok, true);
    } finally {
      await rm(dir);
      await rename(dir + '.away', dir);
    }
  });

  it('echoes or assigns a request id', async () => {
    const given = await srv.fetch('/healthz', { headers: { 'x-request-id': 'abc-123' } });
    assert.equal(given.headers.get('x-request-id'), 'abc-123');
    const fresh = await srv.fetch('/healthz');
    assert.match(fresh.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  it('exposes Prometheus metrics: requests by route and status, latency, bytes, blob store size', async () => {
    await srv.api('POST', '/repositories', { name: 'm', format: 'generic' });
    assert.equal((await srv.fetch('/generic/m/a', { method: 'PUT', body: 'twelve bytes' })).status, 201);
    assert.equal((await srv.fetch('/generic/m/a')).status, 200);
    assert.equal((await srv.fetch('/generic/m/missing')).status, 404);
    const text = await (await srv.fetch('/metrics', { auth: null })).text();
    assert.match(text, /granary_http_requests_total\{method="PUT",route="\/generic\/:repo\/\*",format="generic",status="201"\} 1/);
    assert.match(text, /granary_http_requests_total\{method="GET",route="\/generic\/:repo\/\*",format="generic",status="404"\} 1/);
    assert.match(text, /granary_http_request_duration_seconds_bucket\{le="0\.005",method="GET"/);
    const bytesIn = /granary_http_bytes_in_total\{format="generic"\} (\d+)/.exec(text);
    assert.ok(bytesIn && Number(bytesIn[1]) >= 12, 'bytes in counted');
    assert.match(text, /granary_blob_store_bytes 12\b/);
    assert.match(text, /granary_blob_store_blobs 2\b/); // the file and the empty blob readiness writes
  });

  it('serves an OpenAPI 3.1 document covering the management API', async () => {
    const r = await srv.fetch('/api/v1/openapi.json', { auth: null });
    assert.equal(r.status, 200);
    const doc = (await r.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    assert.equal(doc.openapi, '3.1.0');
    for (const p of ['/api/v1/repositories', '/api/v1/repositories/{name}', '/api/v1/users', '/api/v1/tokens', '/api/v1/bindings', '/api/v1/assets', '/api/v1/events']) {
      assert.ok(doc.paths[p], `${p} documented`);
    }
    assert.ok(doc.paths['/api/v1/repositories'].post, 'POST /repositories documented');
  });

  it('refuses unknown fields in an API body instead of ignoring them', async () => {
    const r = await srv.api<{ error: { code: string; message: string } }>('POST', '/repositories', { name: 'typo', format: 'generic', anonymousRaed: true });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'VALIDATION');
    assert.equal((await srv.api('GET', '/repositories/typo')).status, 404);
  });

  it('answers unknown routes with a JSON 404', async () => {
    const r = await srv.fetch('/nope');
    assert.equal(r.status, 404);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'NOT_FOUND');
  });
});
