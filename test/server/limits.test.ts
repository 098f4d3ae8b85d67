/** Per-principal rate limit, JSON body limit, streamed upload limit and header size limit, over real HTTP. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startServer, type TestServer } from '../helpers/server.ts';

describe('limits', () => {
  let srv: TestServer;
  let userToken: string;

  before(async () => {
    srv = await startServer({
      config: {
        rateLimit: { enabled: true, requestsPerMinute: 5, anonymousPerMinute: 3 },
        limits: { jsonBodyBytes: 2048, uploadBytes: 4096, headerBytes: 4096 },
      },
    });
    await srv.api('POST', '/repositories', { name: 'files', format: 'generic', anonymousRead: true });
    await srv.api('POST', '/users', { name: 'u', password: 'u-password' });
    await srv.api('PUT', '/bindings', { user: 'u', repository: 'files', role: 'write' });
    userToken = (await srv.api<{ token: string }>('POST', '/tokens', { user: 'u', name: 't' })).body.token;
  });
  after(() => srv.close());

  it('limits each principal per minute with 429 + Retry-After; admins are not limited', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await srv.fetch('/api/v1/me', { auth: userToken })).status);
    assert.deepEqual(statuses.slice(0, 5), [200, 200, 200, 200, 200]);
    assert.deepEqual(statuses.slice(5), [429, 429]);
    const r = await srv.fetch('/api/v1/me', { auth: userToken });
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'TOO_MANY_REQUESTS');
    for (let i = 0; i < 10; i++) assert.equal((await srv.fetch('/api/v1/me')).status, 200);
  });

  it('limits anonymous callers per address', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await srv.fetch('/api/v1/me', { auth: null })).status);
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  });

  it('refuses a JSON body over the limit with 413', async () => {
    const r = await srv.api('POST', '/repositories', { name: 'big', format: 'generic', options: { pad: 'x'.repeat(4000) } });
    assert.equal(r.status, 413);
    assert.equal((r.body as { error: { code: string } }).error.code, 'TOO_LARGE');
    assert.equal((await srv.api('GET', '/repositories/big')).status, 404);
  });

  it('refuses a streamed upload over the limit with 413 and stores nothing', async () => {
    const r = await srv.fetch('/generic/files/too-big', { method: 'PUT', body: Buffer.alloc(5000, 1) });
    assert.equal(r.status, 413);
    assert.equal((await srv.fetch('/generic/files/too-big')).status, 404);
    let blobs = 0;
    for await (const _ of srv.services.blobs.list()) blobs++;
    assert.equal(blobs, 0);
    const ok = await srv.fetch('/generic/files/small', { method: 'PUT', body: Buffer.alloc(4000, 1) });
    assert.equal(ok.status, 201);
  });

  it('refuses oversized headers with 431', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const u = new URL(srv.url);
      const req = request({ host: u.hostname, port: u.port, path: '/healthz', headers: { 'x-big': 'y'.repeat(8000) } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 431);
  });
});
