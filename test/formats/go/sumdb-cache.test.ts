/**
 * The checksum-database cache over real HTTP (src/formats/go/sumdb-cache.ts), against a loopback server standing
 * in for sum.golang.org whose answers, status and speed the tests steer: lookups and full tiles are fetched once,
 * `latest` and partial tiles again after the TTL, 404s never kept, cached answers served stale while the sumdb
 * fails, concurrent misses single-flighted, oversized answers refused. The real `go` command's side of it is
 * test/clients/go-sumdb.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../../helpers/server.ts';
import { getAsset } from '../../../src/meta/assets.ts';
import { sizeCap } from '../../../src/formats/go/sumdb-cache.ts';

const NAME = 'sum.test';
const FULL_TILE = Buffer.alloc(8192, 0xab);

let s: TestServer;
let sumdb: Server;
const fake = { treeSize: 1, status: 200, delayMs: 0, hits: new Map<string, number>() };
const hits = (path: string) => fake.hits.get(path) ?? 0;

before(async () => {
  sumdb = createServer((req, res) => {
    const path = req.url ?? '';
    fake.hits.set(path, hits(path) + 1);
    setTimeout(() => {
      if (fake.status !== 200) return res.writeHead(fake.status).end('sumdb trouble\n');
      if (path === '/latest') return res.end(`go.sum database tree\n${fake.treeSize}\nhash=\n`);
      if (path.startsWith('/lookup/example.com/')) return res.writeHead(200, { 'content-type': 'text/plain; charset=UTF-8' }).end(`7\n${path.slice(8)} h1:x=\n`);
      if (path === '/tile/8/0/001') return res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(FULL_TILE);
      if (path.startsWith('/tile/8/0/002.p/')) return res.end(Buffer.alloc(32 * fake.treeSize, fake.treeSize));
      if (path === '/tile/1/0/000') return res.end(Buffer.alloc(100)); // a height-1 tile holds at most 64 bytes
      res.writeHead(404).end('not found\n');
    }, fake.delayMs);
  });
  await new Promise<void>((r) => sumdb.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(sumdb.address() as AddressInfo).port}`;
  s = await startServer();
  await s.services.repos.create({ name: 'sums', format: 'go', anonymousRead: true, options: { sumdb: { [NAME]: url } } }, 'test');
  // A TTL of one second for `latest` and partial tiles (proxy option; the upstream itself is never asked here).
  await s.services.repos.create(
    { name: 'short', format: 'go', kind: 'proxy', upstream: 'http://127.0.0.1:9', anonymousRead: true, options: { sumdb: { [NAME]: url }, proxy: { metadataTtlSeconds: 1 } } },
    'test',
  );
});
after(async () => {
  await s?.close();
  await new Promise<void>((r) => sumdb.close(() => r()));
});

const get = (repo: string, op: string, headers: Record<string, string> = {}) => s.fetch(`/go/${repo}/sumdb/${NAME}/${op}`, { auth: null, headers });

describe('checksum database cache', () => {
  it('fetches a lookup and a full tile once, then serves them from the repository', async () => {
    const op = 'lookup/example.com/!a/b@v1.0.0';
    const first = await get('sums', op);
    assert.equal(first.status, 200);
    const body = await first.text();
    assert.match(body, /^7\nexample.com\/!a\/b@v1.0.0 h1:x=/);
    const again = await get('sums', op);
    assert.equal(await again.text(), body);
    assert.equal(hits(`/${op}`), 1, 'the second answer came from the cache');
    assert.match(again.headers.get('cache-control') ?? '', /max-age=300/);
    const etag = again.headers.get('etag');
    assert.ok(etag, 'served by sendBlob, with the digest as ETag');
    assert.equal((await get('sums', op, { 'if-none-match': etag })).status, 304);
    const part = await get('sums', op, { range: 'bytes=0-1' });
    assert.equal(part.status, 206);
    assert.equal(await part.text(), '7\n');

    for (let i = 0; i < 2; i++) {
      const tile = await get('sums', 'tile/8/0/001');
      assert.equal(tile.status, 200);
      assert.deepEqual(Buffer.from(await tile.arrayBuffer()), FULL_TILE);
      assert.match(tile.headers.get('cache-control') ?? '', /immutable/);
    }
    assert.equal(hits('/tile/8/0/001'), 1);
    // An ordinary asset of the repository, at a path no module can take.
    const repo = (await s.services.repos.get('sums'))!;
    const asset = await getAsset(s.services.meta.db, repo.id, `_sumdb/${NAME}/tile/8/0/001`);
    assert.equal(asset?.size, FULL_TILE.length);
  });

  it('keeps latest and partial tiles for the TTL, then asks again', async () => {
    fake.treeSize = 2;
    for (const repo of ['sums', 'short', 'short']) assert.match(await (await get(repo, 'latest')).text(), /\n2\n/);
    assert.equal(hits('/latest'), 2, 'one request per repository within the TTL');
    assert.equal((await get('short', 'tile/8/0/002.p/2')).status, 200);
    assert.equal((await get('short', 'tile/8/0/002.p/2')).status, 200);
    assert.equal(hits('/tile/8/0/002.p/2'), 1);

    fake.treeSize = 3;
    await sleep(1100);
    const latest = await get('short', 'latest');
    assert.equal(latest.headers.get('cache-control'), 'no-cache');
    assert.match(await latest.text(), /\n3\n/, 'past the TTL the new tree head is fetched');
    assert.equal(hits('/latest'), 3);
    const tile = Buffer.from(await (await get('short', 'tile/8/0/002.p/2')).arrayBuffer());
    assert.equal(tile[0], 3);
    assert.equal(hits('/tile/8/0/002.p/2'), 2);
    assert.match(await (await get('sums', 'latest')).text(), /\n2\n/, 'the default TTL (60 s) has not run out');
  });

  it('never keeps a 404', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await get('sums', 'lookup/other.org/x@v1.0.0')).status, 404);
    assert.equal(hits('/lookup/other.org/x@v1.0.0'), 2);
  });

  it('asks the sumdb once for concurrent clients', async () => {
    fake.delayMs = 200;
    try {
      const answers = await Promise.all(Array.from({ length: 8 }, () => get('sums', 'lookup/example.com/busy@v1.0.0')));
      assert.deepEqual(answers.map((r) => r.status), Array(8).fill(200));
      assert.equal(new Set(await Promise.all(answers.map((r) => r.text()))).size, 1);
      assert.equal(hits('/lookup/example.com/busy@v1.0.0'), 1);
    } finally {
      fake.delayMs = 0;
    }
  });

  it('refuses an answer bigger than the protocol allows, and keeps nothing of it', async () => {
    assert.equal(sizeCap('tile/8/0/001'), 8192);
    assert.equal(sizeCap('tile/8/data/001'), 1024 * 1024);
    const r = await get('sums', 'tile/1/0/000');
    assert.equal(r.status, 503);
    assert.match(await r.text(), /more than 64 bytes/);
    const repo = (await s.services.repos.get('sums'))!;
    assert.equal(await getAsset(s.services.meta.db, repo.id, `_sumdb/${NAME}/tile/1/0/000`), null);
  });

  it('serves what it has, stale where the TTL ran out, while the sumdb answers 503', async () => {
    await sleep(1100);
    fake.status = 503;
    try {
      const latest = await get('short', 'latest');
      assert.equal(latest.status, 200);
      assert.match(await latest.text(), /\n3\n/);
      assert.match(latest.headers.get('warning') ?? '', /^110 /);
      const tile = await get('sums', 'tile/8/0/001');
      assert.equal(tile.status, 200);
      assert.equal(tile.headers.get('warning'), null, 'a full tile is never stale');
      const missing = await get('sums', 'lookup/example.com/never@v1.0.0');
      assert.equal(missing.status, 503);
      assert.match(await missing.text(), /checksum database sum.test answered 503 for lookup\/example.com\/never@v1.0.0/);
    } finally {
      fake.status = 200;
    }
  });

  it('serves what it has while the sumdb is unreachable', async () => {
    await new Promise<void>((r) => sumdb.close(() => r()));
    try {
      await sleep(1100);
      const latest = await get('short', 'latest');
      assert.equal(latest.status, 200);
      assert.match(latest.headers.get('warning') ?? '', /^110 /);
      const down = await get('sums', 'lookup/example.com/never@v1.0.0');
      assert.equal(down.status, 503);
      assert.match(await down.text(), /checksum database sum.test unreachable/);
    } finally {
      await new Promise<void>((r) => sumdb.listen(0, '127.0.0.1', r)); // for after()
    }
  });
});
