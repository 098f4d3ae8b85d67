/**
 * Single-flight and failed transfers through an OCI proxy repository:
 * - 20 concurrent pulls of one uncached ~200 MB blob → exactly one upstream GET (counted at the upstream's door),
 *   every client gets the right bytes, and the blob is cached afterwards. The data is generated and streamed,
 *   never held in memory.
 * - An upstream that drops the connection half way (a loopback node:http server this test controls) → the client
 *   gets an error, nothing is cached (no asset, no blob), and a retry once the upstream behaves succeeds.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { getAsset } from '../../../src/meta/assets.ts';
import { startServer, type TestServer } from '../../helpers/server.ts';
import { countingProxy, digestOf, generated, getSha256, pushBlob, sha256Of, type Counter } from '../../repos/proxy/helpers.ts';

const ADMIN = 'Bearer test-admin-token-0123456789abcdef';
const BIG = 200 * 1024 * 1024;
const CLIENTS = 20;

describe('OCI proxy: one upstream GET for many clients', () => {
  let up: TestServer;
  let counter: Counter;
  let px: TestServer;
  let digest: string;
  const data = generated(BIG, 'proxy-flight');

  before(async () => {
    up = await startServer();
    await up.services.repos.create({ name: 'src', format: 'oci', anonymousRead: true }, 'test');
    digest = await digestOf(data);
    await pushBlob(up.url, ADMIN, 'src/big', data, digest, BIG);
    counter = await countingProxy(up.url);
    px = await startServer();
    await px.services.repos.create({ name: 'cache', format: 'oci', kind: 'proxy', anonymousRead: true, upstream: counter.url }, 'test');
  });
  after(async () => {
    await px?.close();
    await counter?.close();
    await up?.close();
  });

  it(`${CLIENTS} concurrent pulls of an uncached ${BIG / 1024 / 1024} MiB blob make one upstream GET`, { timeout: 120_000 }, async () => {
    const pulls = Array.from({ length: CLIENTS }, async () => {
      const res = await getSha256(`${px.url}/v2/cache/src/big/blobs/${digest}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-length'], String(BIG));
      assert.equal(res.bytes, BIG);
      return res.digest;
    });
    const got = await Promise.all(pulls);
    assert.deepEqual(got, Array(CLIENTS).fill(digest));
    assert.equal(counter.count('GET', `/v2/src/big/blobs/${digest}`), 1);
    const cache = (await px.services.repos.get('cache'))!;
    const a = await getAsset(px.services.meta.db, cache.id, `src/big/_blobs/${digest}`);
    assert.equal(a?.size, BIG, 'cached once the flight is over');
    assert.ok(await px.services.blobs.stat(digest));
    const again = await px.fetch(`/v2/cache/src/big/blobs/${digest}`, { headers: { range: 'bytes=1000-1999' } });
    assert.equal(again.status, 206);
    assert.equal((await again.arrayBuffer()).byteLength, 1000);
    assert.equal(counter.count('GET', `/v2/src/big/blobs/${digest}`), 1, 'later reads come from the cache');
  });
});

describe('OCI proxy: an upstream that breaks off', () => {
  let flaky: Server;
  let px: TestServer;
  let behave = false;
  let gets = 0;
  const SIZE = 8 * 1024 * 1024;
  const data = generated(SIZE, 'proxy-drop');
  let digest: string;

  before(async () => {
    digest = await digestOf(data);
    // A registry that knows one blob; until told to behave it sends half of it and drops the connection.
    flaky = createServer(async (req, res) => {
      if (req.url !== `/v2/img/blobs/${digest}`) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"BLOB_UNKNOWN","message":"no"}]}');
        return;
      }
      gets++;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(SIZE), 'docker-content-digest': digest });
      let sent = 0;
      for await (const c of data()) {
        if (!behave && sent + (c as Buffer).length > SIZE / 2) {
          res.socket?.destroy();
          return;
        }
        sent += (c as Buffer).length;
        if (!res.write(c)) await new Promise((r) => res.once('drain', r));
      }
      res.end();
    });
    await new Promise<void>((r) => flaky.listen(0, '127.0.0.1', r));
    px = await startServer();
    await px.services.repos.create(
      {
        name: 'flaky',
        format: 'oci',
        kind: 'proxy',
        anonymousRead: true,
        upstream: `http://127.0.0.1:${(flaky.address() as AddressInfo).port}`,
        options: { proxy: { retries: 0 } },
      },
      'test',
    );
  });
  after(async () => {
    await px?.close();
    flaky?.closeAllConnections();
    await new Promise((r) => flaky?.close(r));
  });

  it('fails the client, caches nothing, and a retry succeeds', async () => {
    const res = await px.fetch(`/v2/flaky/img/blobs/${digest}`);
    assert.equal(res.status, 200, 'headers go out before the upstream breaks off');
    await assert.rejects(sha256Of(res), 'the client sees a broken body, not a clean end');
    const repo = (await px.services.repos.get('flaky'))!;
    // The flight is over once the failure was seen; nothing may have become visible.
    for (let i = 0; i < 50 && (await import('../../../src/repos/proxy/index.ts')).proxyStats(px.services).inFlight > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await getAsset(px.services.meta.db, repo.id, `img/_blobs/${digest}`), null);
    assert.equal(await px.services.blobs.stat(digest), null);

    behave = true;
    const retry = await px.fetch(`/v2/flaky/img/blobs/${digest}`);
    assert.equal(retry.status, 200);
    assert.equal(await sha256Of(retry), digest);
    assert.equal(gets, 2);
    assert.ok(await getAsset(px.services.meta.db, repo.id, `img/_blobs/${digest}`));
  });
});
