/**
 * Go proxy and group repositories over real HTTP, the upstream being another real Granary with a hosted Go
 * repository: what a fetch caches, what stays served when the upstream is stopped, `list` as mutable metadata
 * (TTL), 404 pass-through, and groups merging hosted and proxy members. The checksum-database forwarding is
 * checked against a loopback HTTP server standing in for sum.golang.org.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../../helpers/server.ts';
import { getAsset } from '../../../src/meta/assets.ts';
import { moduleZip, publishZip } from './zips.ts';

let up: TestServer; // the upstream Granary
let s: TestServer; // the Granary under test
let upstreamRunning = true;

const MOD = 'example.com/Up/lib';
const ESC = 'example.com/!up/lib';

before(async () => {
  up = await startServer();
  await up.services.repos.create({ name: 'origin', format: 'go', anonymousRead: true }, 'test');
  for (const v of ['v1.0.0', 'v1.1.0']) assert.equal((await publishZip(up, 'origin', MOD, v, await moduleZip(MOD, v))).status, 201);

  s = await startServer();
  const upstream = `${up.url}/go/origin`;
  await s.services.repos.create({ name: 'cache', format: 'go', kind: 'proxy', upstream, anonymousRead: true }, 'test');
  // metadataTtlSeconds 0: every list/@latest asks the upstream again (and falls back to the cache when it is gone).
  await s.services.repos.create({ name: 'live', format: 'go', kind: 'proxy', upstream, anonymousRead: true, options: { proxy: { metadataTtlSeconds: 0, retries: 0 } } }, 'test');
  await s.services.repos.create({ name: 'mine', format: 'go', anonymousRead: true }, 'test');
  await s.services.repos.create({ name: 'all', format: 'go', kind: 'group', members: ['mine', 'live'], writeMember: 'mine', anonymousRead: true }, 'test');
});
after(async () => {
  await s?.close();
  if (upstreamRunning) await up?.close();
});

async function text(path: string): Promise<{ status: number; body: string; type: string | null }> {
  const res = await s.fetch(path, { auth: null });
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
}

describe('go proxy and group', () => {
  let zip: Buffer;

  it('fetches through the proxy and caches immutable files', async () => {
    const list = await text(`/go/cache/${ESC}/@v/list`);
    assert.equal(list.status, 200, list.body);
    assert.equal(list.body, 'v1.0.0\nv1.1.0\n');
    const info = await text(`/go/cache/${ESC}/@v/v1.1.0.info`);
    assert.equal(info.status, 200);
    assert.equal(info.type, 'application/json');
    assert.equal((JSON.parse(info.body) as { Version: string }).Version, 'v1.1.0');
    const mod = await text(`/go/cache/${ESC}/@v/v1.1.0.mod`);
    assert.equal(mod.body, `module ${MOD}\n\ngo 1.19\n`);
    const z = await s.fetch(`/go/cache/${ESC}/@v/v1.1.0.zip`, { auth: null });
    assert.equal(z.status, 200);
    assert.equal(z.headers.get('content-type'), 'application/zip');
    zip = Buffer.from(await z.arrayBuffer());
    const original = Buffer.from(await (await up.fetch(`/go/origin/${ESC}/@v/v1.1.0.zip`, { auth: null })).arrayBuffer());
    assert.deepEqual(zip, original);
    const latest = await text(`/go/cache/${ESC}/@latest`);
    assert.equal((JSON.parse(latest.body) as { Version: string }).Version, 'v1.1.0');
    // The cache holds them under the protocol's own paths, like a hosted repository.
    const cache = (await s.services.repos.get('cache'))!;
    for (const p of ['@v/list', '@v/v1.1.0.info', '@v/v1.1.0.mod', '@v/v1.1.0.zip', '@latest']) {
      assert.ok(await getAsset(s.services.meta.db, cache.id, `${ESC}/${p}`), `${p} cached`);
    }
  });

  it('passes 404 through for modules the upstream lacks, and is read-only', async () => {
    assert.equal((await text('/go/cache/example.com/none/@v/list')).status, 404);
    assert.equal((await text(`/go/cache/${ESC}/@v/v9.0.0.zip`)).status, 404);
    const put = await publishZip(s, 'cache', MOD, 'v2.0.0', await moduleZip(MOD, 'v1.2.0'));
    assert.equal(put.status, 405);
  });

  it('treats list as mutable metadata: a new upstream version shows after the TTL', async () => {
    assert.equal((await text(`/go/live/${ESC}/@v/list`)).body, 'v1.0.0\nv1.1.0\n');
    assert.equal((await publishZip(up, 'origin', MOD, 'v1.2.0', await moduleZip(MOD, 'v1.2.0'))).status, 201);
    assert.equal((await text(`/go/live/${ESC}/@v/list`)).body, 'v1.0.0\nv1.1.0\nv1.2.0\n', 'TTL 0: revalidated');
    assert.equal((await text(`/go/cache/${ESC}/@v/list`)).body, 'v1.0.0\nv1.1.0\n', 'default TTL: still the cached list');
  });

  it('merges hosted and proxy members in a group', async () => {
    assert.equal((await publishZip(s, 'all', MOD, 'v1.5.0', await moduleZip(MOD, 'v1.5.0'))).status, 201, 'publish via writeMember');
    assert.equal((await text(`/go/all/${ESC}/@v/list`)).body, 'v1.0.0\nv1.1.0\nv1.2.0\nv1.5.0\n');
    assert.equal((JSON.parse((await text(`/go/all/${ESC}/@latest`)).body) as { Version: string }).Version, 'v1.5.0');
    assert.equal((await text(`/go/all/${ESC}/@v/v1.5.0.mod`)).status, 200, 'from the hosted member');
    assert.equal((await text(`/go/all/${ESC}/@v/v1.2.0.mod`)).status, 200, 'from the proxy member');
    assert.equal((await text(`/go/all/${ESC}/@v/v1.3.0.mod`)).status, 404);
  });

  it('passes over a group member whose upstream fails when another member answers', async () => {
    await s.services.repos.create({ name: 'dead', format: 'go', kind: 'proxy', upstream: 'http://127.0.0.1:1/go/none', anonymousRead: true, options: { proxy: { retries: 0 } } }, 'test');
    await s.services.repos.create({ name: 'mixed', format: 'go', kind: 'group', members: ['dead', 'mine'], anonymousRead: true }, 'test');
    assert.equal((await text(`/go/mixed/${ESC}/@v/list`)).body, 'v1.5.0\n');
    assert.equal((JSON.parse((await text(`/go/mixed/${ESC}/@latest`)).body) as { Version: string }).Version, 'v1.5.0');
    assert.equal((await text(`/go/mixed/${ESC}/@v/v1.5.0.zip`)).status, 200);
    const nobody = await text('/go/mixed/example.com/nobody/@v/list');
    assert.equal(nobody.status, 502, 'with no answer at all, the upstream failure is reported');
  });

  it('keeps serving from the cache with the upstream stopped', async () => {
    await text(`/go/live/${ESC}/@v/v1.2.0.zip`);
    await up.close();
    upstreamRunning = false;
    for (const repo of ['cache', 'live']) {
      const list = await text(`/go/${repo}/${ESC}/@v/list`);
      assert.equal(list.status, 200, `${repo}: ${list.body}`);
      assert.match(list.body, /^v1\.0\.0\nv1\.1\.0\n/);
    }
    const stale = await s.fetch(`/go/live/${ESC}/@v/list`, { auth: null });
    assert.match(stale.headers.get('warning') ?? '', /^110 /, 'a stale list says so');
    assert.equal((await text(`/go/cache/${ESC}/@v/v1.1.0.zip`)).status, 200);
    assert.equal((await text(`/go/live/${ESC}/@v/v1.2.0.zip`)).status, 200);
    assert.equal((JSON.parse((await text(`/go/live/${ESC}/@latest`)).body) as { Version: string }).Version, 'v1.2.0');
    // What was never fetched cannot be served: the upstream failure is reported, not a 404.
    const never = await text(`/go/cache/${ESC}/@v/v1.0.0.zip`);
    assert.equal(never.status, 502);
    assert.match(never.type ?? '', /^text\/plain/);
  });
});

describe('checksum database proxy', () => {
  let sumdb: Server;
  let sumUrl: string;
  const seen: string[] = [];
  const TILE = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

  before(async () => {
    sumdb = createServer((req, res) => {
      seen.push(req.url ?? '');
      if (req.url === '/latest') return res.end('go.sum database tree\n42\nabc=\n\n— sum.golang.org sig\n');
      if (req.url?.startsWith('/lookup/example.com/')) return res.end(`17\n${req.url.slice(8)} h1:abc=\n\ngo.sum database tree\n`);
      if (req.url?.startsWith('/tile/8/0/')) return res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(TILE);
      res.writeHead(404).end('not found\n');
    });
    await new Promise<void>((r) => sumdb.listen(0, '127.0.0.1', r));
    sumUrl = `http://127.0.0.1:${(sumdb.address() as AddressInfo).port}`;
    await s.services.repos.create({ name: 'withsum', format: 'go', anonymousRead: true, options: { sumdb: { 'sum.golang.org': sumUrl } } }, 'test');
  });
  after(() => new Promise<void>((r) => sumdb.close(() => r())));

  it('validates the sumdb option', async () => {
    for (const [sumdbOpt, re] of [
      [{ 'sum.golang.org': 'ftp://sum.golang.org' }, /options.sumdb.sum.golang.org: must match pattern/],
      [{ 'bad name': 'https://sum.golang.org' }, /options.sumdb: must match pattern/],
    ] as const) {
      await assert.rejects(s.services.repos.create({ name: 'badsum', format: 'go', options: { sumdb: sumdbOpt } }, 'test'), re);
    }
  });

  it('says which checksum databases it proxies', async () => {
    assert.equal((await text('/go/withsum/sumdb/sum.golang.org/supported')).status, 200);
    assert.equal((await text('/go/withsum/sumdb/sum.example.org/supported')).status, 404);
    assert.equal((await text('/go/withsum/sumdb/__proto__/supported')).status, 404);
    assert.equal((await text('/go/withsum/sumdb/constructor/latest')).status, 404);
    assert.equal((await text('/go/mine/sumdb/sum.golang.org/supported')).status, 404, 'not configured: go then asks the sumdb directly');
  });

  it('forwards latest, lookup and tiles with cache headers', async () => {
    const latest = await text('/go/withsum/sumdb/sum.golang.org/latest');
    assert.equal(latest.status, 200);
    assert.match(latest.body, /^go.sum database tree\n42\n/);
    const lookup = await s.fetch('/go/withsum/sumdb/sum.golang.org/lookup/example.com/!up/lib@v1.0.0', { auth: null });
    assert.equal(lookup.status, 200);
    assert.match(await lookup.text(), /^17\nexample.com\/!up\/lib@v1.0.0 h1:abc=/);
    assert.match(lookup.headers.get('cache-control') ?? '', /max-age=300/);
    const tile = await s.fetch('/go/withsum/sumdb/sum.golang.org/tile/8/0/x001/234', { auth: null });
    assert.equal(tile.status, 200);
    assert.deepEqual(Buffer.from(await tile.arrayBuffer()), TILE);
    assert.match(tile.headers.get('cache-control') ?? '', /immutable/);
    const partial = await s.fetch('/go/withsum/sumdb/sum.golang.org/tile/8/0/000.p/5', { auth: null });
    assert.equal(partial.status, 200);
    assert.equal(partial.headers.get('cache-control'), 'no-cache');
    assert.ok(seen.includes('/lookup/example.com/!up/lib@v1.0.0') && seen.includes('/tile/8/0/x001/234'), seen.join(' '));
  });

  it('refuses anything else and reports an unreachable sumdb', async () => {
    const n = seen.length;
    for (const p of ['tile/../../etc/passwd', 'lookup', 'admin/x']) {
      assert.equal((await text(`/go/withsum/sumdb/sum.golang.org/${p}`)).status, 404, p);
    }
    assert.equal(seen.length, n, 'nothing was forwarded');
    assert.equal((await text('/go/withsum/sumdb/sum.golang.org/lookup/other.org/x@v1.0.0')).status, 404, 'the sumdb 404 passes through');
    await new Promise<void>((r) => sumdb.close(() => r()));
    // Never asked before, so nothing cached can stand in (cached answers are served stale: sumdb-cache.test.ts).
    const down = await text('/go/withsum/sumdb/sum.golang.org/lookup/example.com/down@v1.0.0');
    assert.equal(down.status, 503);
    assert.match(down.body, /checksum database sum.golang.org unreachable/);
    await new Promise<void>((r) => sumdb.listen(0, '127.0.0.1', r)); // for after()
  });
});
