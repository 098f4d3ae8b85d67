/**
 * The HTTP side of Maven repositories, with a raw node:http client where fetch would hide what matters:
 * `Expect: 100-continue` answered before the body is sent, and a final status instead of 100 when the deploy
 * is refused (bad credentials, release redeploy); path traversal refused however it is spelled; Basic auth with
 * a password or an API token, as Maven's settings.xml `<server>` sends it; folder browsing.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { basic, startServer, type TestServer } from '../../helpers/server.ts';
import { createRepo, deployFile, getText } from './support.ts';
import { sendExpecting } from '../../helpers/expect-continue.ts';

let s: TestServer;
let token: string;
let port: number;

before(async () => {
  s = await startServer();
  port = Number(new URL(s.url).port);
  await createRepo(s, { name: 'private' });
  assert.equal((await s.api('POST', '/users', { name: 'alice', password: 'alice-password-1' })).status, 201);
  assert.equal((await s.api('PUT', '/bindings', { user: 'alice', repository: 'private', role: 'write' })).status, 204);
  token = (await s.api<{ token: string }>('POST', '/tokens', { user: 'alice', name: 'maven' })).body.token;
});
after(() => s.close());

const putExpecting = (path: string, body: string, auth: string | null) => sendExpecting(port, path, body, auth);

function rawGet(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, headers: { authorization: basic('alice', token) } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}

describe('maven over http', () => {
  it('answers Expect: 100-continue before the body, and refuses without asking for the body', async () => {
    const ok = await putExpecting('/maven/private/org/x/lib/1.0/lib-1.0.jar', 'jar bytes', basic('alice', token));
    assert.deepEqual(ok.events, ['continue', 'response 201']);
    console.log(`# 100 Continue after ${ok.continueMs!.toFixed(1)} ms`);
    const wrong = await putExpecting('/maven/private/org/x/lib/1.1/lib-1.1.jar', 'jar bytes', basic('alice', 'wrong-password'));
    assert.deepEqual(wrong.events, ['response 401']);
    const anonymous = await putExpecting('/maven/private/org/x/lib/1.1/lib-1.1.jar', 'jar bytes', null);
    assert.deepEqual(anonymous.events, ['response 401']);
    const again = await putExpecting('/maven/private/org/x/lib/1.0/lib-1.0.jar', 'other bytes', basic('alice', token));
    assert.deepEqual(again.events, ['response 409']);
    assert.match(again.statusText, /cannot be redeployed/);
    // Nothing of the refused uploads was stored, and the first one is intact.
    assert.equal((await rawGet('/maven/private/org/x/lib/1.1/lib-1.1.jar')).status, 404);
    assert.equal((await rawGet('/maven/private/org/x/lib/1.0/lib-1.0.jar')).body, 'jar bytes');
  });

  it('lets exactly one of two racing first deploys of a release win; the loser gets 409 and stores nothing', async () => {
    // Both requests are past the redeploy check (each got its 100 Continue) before either sends a byte.
    const path = '/maven/private/org/x/race/1.0/race-1.0.jar';
    const open = (body: string) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path, headers: { expect: '100-continue', 'content-length': Buffer.byteLength(body), authorization: basic('alice', token) } });
      const continued = new Promise<void>((resolve) => req.once('continue', () => resolve()));
      const status = new Promise<number>((resolve, reject) => {
        req.once('response', (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.once('error', reject);
      });
      req.flushHeaders();
      return { req, body, continued, status };
    };
    const a = open('bytes of A');
    const b = open('bytes of B');
    await Promise.all([a.continued, b.continued]);
    a.req.end(a.body);
    b.req.end(b.body);
    const statuses = [await a.status, await b.status];
    assert.deepEqual([...statuses].sort(), [201, 409], `statuses ${statuses}`);
    const winner = statuses[0] === 201 ? a : b;
    assert.equal((await rawGet(path)).body, winner.body);
  });

  it('refuses path traversal however it is spelled', async () => {
    for (const path of [
      '/maven/private/org/../../../etc/passwd',
      '/maven/private/org/%2e%2e/%2e%2e/etc/passwd',
      '/maven/private/org/..%2f..%2fsecret.jar',
      '/maven/private/./x.jar',
      '/maven/private/a//b.jar',
      '/maven/private/a%5c..%5cb.jar',
    ]) {
      const put = await putExpecting(path, 'evil', basic('alice', token));
      assert.equal(put.status, 400, `PUT ${path}: ${put.events}`);
      assert.equal((await rawGet(path)).status, 400, `GET ${path}`);
    }
    assert.doesNotMatch((await rawGet('/maven/private/')).body, /etc|secret|evil/);
  });

  it('takes Basic auth with an API token or a password, and challenges with Basic', async () => {
    assert.equal(await deployFile(s, 'private', 'org/x/lib/2.0/lib-2.0.jar', 'two', basic('alice', 'alice-password-1')), 201);
    const anon = await s.fetch('/maven/private/org/x/lib/2.0/lib-2.0.jar', { auth: null });
    assert.equal(anon.status, 401);
    assert.match(anon.headers.get('www-authenticate') ?? '', /^Basic /);
    const withToken = await getText(s, '/maven/private/org/x/lib/maven-metadata.xml');
    assert.equal(withToken.status, 200);
    const viaBasic = await s.fetch('/maven/private/org/x/lib/2.0/lib-2.0.jar', { auth: basic('alice', token) });
    assert.equal(await viaBasic.text(), 'two');
  });

  it('serves an HTML index for folders, with the generated metadata listed', async () => {
    const root = await s.fetch('/maven/private', { redirect: 'manual' });
    assert.equal(root.status, 301);
    assert.equal(root.headers.get('location'), '/maven/private/');
    const idx = await getText(s, '/maven/private/org/x/lib/');
    assert.equal(idx.status, 200);
    assert.match(idx.headers.get('content-type') ?? '', /text\/html/);
    assert.match(idx.body, /href="\/maven\/private\/org\/x\/lib\/1\.0\/"/);
    assert.match(idx.body, /href="\/maven\/private\/org\/x\/lib\/2\.0\/"/);
    assert.match(idx.body, /href="\/maven\/private\/org\/x\/lib\/maven-metadata\.xml"/);
    const noSlash = await getText(s, '/maven/private/org/x/lib/2.0');
    assert.match(noSlash.body, /lib-2\.0\.jar/);
    assert.equal((await getText(s, '/maven/private/org/nothing/')).status, 404);
  });
});
