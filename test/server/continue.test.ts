/**
 * `Expect: 100-continue` on every route (server/continue.ts): the 100 comes only after authentication and
 * authorization passed, so a refused upload — bad credentials, a read-only user, an unknown repository — is
 * answered with its final status before the client sends a byte; an accepted one gets 100 and then its answer.
 * Generic files, an OCI blob upload and a JSON body of the management API, each through a raw node:http client.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, startServer, type TestServer } from '../helpers/server.ts';
import { sendExpecting } from '../helpers/expect-continue.ts';

let s: TestServer;
let port: number;
let reader: string;

before(async () => {
  s = await startServer();
  port = Number(new URL(s.url).port);
  assert.equal((await s.api('POST', '/repositories', { name: 'files', format: 'generic' })).status, 201);
  assert.equal((await s.api('POST', '/repositories', { name: 'images', format: 'oci' })).status, 201);
  assert.equal((await s.api('POST', '/users', { name: 'reader', password: 'reader-password-1' })).status, 201);
  assert.equal((await s.api('PUT', '/bindings', { user: 'reader', repository: '*', role: 'read' })).status, 204);
  reader = (await s.api<{ token: string }>('POST', '/tokens', { user: 'reader', name: 'ci' })).body.token;
});
after(() => s.close());

const admin = `Bearer ${ADMIN_TOKEN}`;

describe('Expect: 100-continue', () => {
  it('asks for a generic upload only once the caller may write it', async () => {
    assert.deepEqual((await sendExpecting(port, '/generic/files/a.bin', 'bytes', admin)).events, ['continue', 'response 201']);
    assert.deepEqual((await sendExpecting(port, '/generic/files/b.bin', 'bytes', 'Bearer not-a-token')).events, ['response 401']);
    assert.deepEqual((await sendExpecting(port, '/generic/files/b.bin', 'bytes', `Bearer ${reader}`)).events, ['response 403']);
    assert.deepEqual((await sendExpecting(port, '/generic/nope/b.bin', 'bytes', admin)).events, ['response 404']);
    assert.equal((await s.fetch('/generic/files/b.bin')).status, 404, 'nothing of the refused uploads was stored');
    assert.equal(await (await s.fetch('/generic/files/a.bin')).text(), 'bytes');
  });

  it('asks for an OCI blob upload only once the caller may push', async () => {
    const start = await s.fetch('/v2/images/app/blobs/uploads/', { method: 'POST' });
    assert.equal(start.status, 202);
    const loc = new URL(start.headers.get('location')!, s.url);
    const patch = { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' } };
    assert.deepEqual((await sendExpecting(port, loc.pathname + loc.search, 'layer', `Bearer ${reader}`, patch)).events, ['response 403']);
    assert.deepEqual((await sendExpecting(port, loc.pathname + loc.search, 'layer', admin, patch)).events, ['continue', 'response 202']);
  });

  it('asks for a management API JSON body before parsing it', async () => {
    const body = JSON.stringify({ name: 'more-files', format: 'generic' });
    const json = { method: 'POST', headers: { 'content-type': 'application/json' } };
    assert.deepEqual((await sendExpecting(port, '/api/v1/repositories', body, admin, json)).events, ['continue', 'response 201']);
    assert.deepEqual((await sendExpecting(port, '/api/v1/repositories', body, `Bearer ${reader}`, json)).events, ['response 403']);
  });
});
