/**
 * Proxy retention (`options.proxy.unusedDays`, src/repos/proxy/retention.ts) against real upstreams on loopback:
 * a plain node:http server behind a Go proxy repository, and a second Granary behind an OCI proxy. Ages are set in
 * the database (nobody waits days): what was not read for unusedDays goes (asset row + asset.deleted event), what
 * was read stays, a repository without unusedDays keeps everything, a cached read sets accessed_at (after the
 * flush, at most once an hour), and an OCI image goes whole — manifest, tag, blob links — and is fetched again;
 * blob links a kept manifest needs stay.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { getAsset } from '../../../src/meta/assets.ts';
import { listEvents, lastEventSeq } from '../../../src/meta/events.ts';
import { getTag } from '../../../src/meta/tags.ts';
import type { RepositoryRecord } from '../../../src/meta/repos.ts';
import { flushAccess, sweepRetention } from '../../../src/repos/proxy/index.ts';
import { startJanitor } from '../../../src/server/janitor.ts';
import { startServer, type TestServer } from '../../helpers/server.ts';
import { countingProxy, loopbackUpstream, pushImage, type Counter, type PushedImage } from './helpers.ts';

const ADMIN = 'Bearer test-admin-token-0123456789abcdef';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DAYS_AGO = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString();

let upstream: Awaited<ReturnType<typeof loopbackUpstream>>;
let base: string;
const upstreamGets: string[] = [];
let s: TestServer;

const modPath = (m: string) => `example.com/${m}/@v/v1.0.0.mod`;

async function get(path: string, headers: Record<string, string> = {}): Promise<Response> {
  const r = await s.fetch(path, { headers });
  await r.arrayBuffer();
  return r;
}

/** Sets the age of a repository's assets (all, or those whose path contains `part`). */
async function age(repo: RepositoryRecord, t: { updated: string; accessed: string | null }, part?: string): Promise<void> {
  let q = s.services.meta.db.updateTable('assets').set({ updated_at: t.updated, created_at: t.updated, accessed_at: t.accessed }).where('repo_id', '=', repo.id);
  if (part) q = q.where('path', 'like', `%${part}%`);
  await q.execute();
}

const accessedAt = async (repo: RepositoryRecord, path: string) =>
  (await s.services.meta.db.selectFrom('assets').select('accessed_at').where('repo_id', '=', repo.id).where('path', '=', path).executeTakeFirst())?.accessed_at;

describe('proxy retention (unusedDays)', () => {
  before(async () => {
    upstream = await loopbackUpstream((req, res) => {
      upstreamGets.push(req.url!);
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`module ${req.url!.split('/@v/')[0].slice(1)}\n`);
    });
    base = upstream.url;
    s = await startServer();
  });
  after(async () => {
    await s?.close();
    await upstream?.close();
  });

  it('rejects unusedDays below 1', async () => {
    const r = await s.api('POST', '/repositories', { name: 'bad', format: 'go', kind: 'proxy', upstream: base, options: { proxy: { unusedDays: 0 } } });
    assert.equal(r.status, 400);
  });

  it('removes what nobody read for unusedDays, keeps what was read, and keeps everything without unusedDays', async () => {
    const gp = await s.services.repos.create({ name: 'gp', format: 'go', kind: 'proxy', upstream: base, options: { proxy: { unusedDays: 1, retries: 0 } } }, 'test');
    const keep = await s.services.repos.create({ name: 'gkeep', format: 'go', kind: 'proxy', upstream: base, options: { proxy: { retries: 0 } } }, 'test');
    for (const p of [`/go/gp/${modPath('recent')}`, `/go/gp/${modPath('old')}`, `/go/gkeep/${modPath('old')}`]) assert.equal((await get(p)).status, 200);
    for (const [r, m] of [[gp, 'recent'], [gp, 'old'], [keep, 'old']] as const) assert.ok(await getAsset(s.services.meta.db, r.id, modPath(m)), `${r.name} cached ${m}`);

    await age(gp, { updated: DAYS_AGO(3), accessed: DAYS_AGO(2) });
    await age(keep, { updated: DAYS_AGO(300), accessed: null });
    await s.services.meta.db.updateTable('assets').set({ accessed_at: DAYS_AGO(0.5) }).where('repo_id', '=', gp.id).where('path', '=', modPath('recent')).execute();
    const seq = await lastEventSeq(s.services.meta.db);

    assert.deepEqual(await sweepRetention(s.services), [{ repository: 'gp', removed: 1 }]);
    assert.equal(await getAsset(s.services.meta.db, gp.id, modPath('old')), null, 'unused for 2 days: removed');
    assert.ok(await getAsset(s.services.meta.db, gp.id, modPath('recent')), 'read 12 hours ago: kept');
    assert.ok(await getAsset(s.services.meta.db, keep.id, modPath('old')), 'no unusedDays: kept forever');
    const events = await listEvents(s.services.meta.db, { since: seq });
    assert.deepEqual(
      events.map((e) => [e.kind, e.repo, e.path, e.actor]),
      [['asset.deleted', 'gp', modPath('old'), 'retention']],
    );

    // Gone from the cache, not from the world: the next read fetches it again.
    const before = upstreamGets.length;
    assert.equal((await get(`/go/gp/${modPath('old')}`)).status, 200);
    assert.equal(upstreamGets.length, before + 1);
    assert.deepEqual(await sweepRetention(s.services), [], 'nothing unused any more');
  });

  it('a read served from the cache sets accessed_at (once the noted reads are flushed, at most once an hour) and keeps the object', async () => {
    const gp = (await s.services.repos.get('gp'))!;
    const path = modPath('recent');
    await age(gp, { updated: DAYS_AGO(5), accessed: null });
    const start = new Date().toISOString();
    const upstreamBefore = upstreamGets.length;
    assert.equal((await get(`/go/gp/${path}`)).status, 200);
    assert.equal(upstreamGets.length, upstreamBefore, 'served from the cache');
    assert.equal(await accessedAt(gp, path), null, 'nothing written per read');
    assert.ok((await flushAccess(s.services)) >= 1);
    const at = await accessedAt(gp, path);
    assert.ok(at && at >= start, `accessed_at ${at} set by the read`);

    // Read again within the hour: no new write.
    assert.equal((await get(`/go/gp/${path}`)).status, 200);
    assert.equal(await flushAccess(s.services), 0);

    const removed = await sweepRetention(s.services);
    assert.ok(await getAsset(s.services.meta.db, gp.id, path), 'recently read: kept');
    assert.deepEqual(removed, [{ repository: 'gp', removed: 1 }], `only the never-read ${modPath('old')} went`);
  });

  it("the server's janitor sweeps at start (reads noted on the node count) and writes the noted reads when stopped", async () => {
    const gp = (await s.services.repos.get('gp'))!;
    const fresh = modPath('janitor');
    assert.equal((await get(`/go/gp/${fresh}`)).status, 200); // fetched from the upstream
    await age(gp, { updated: DAYS_AGO(5), accessed: null });
    assert.equal((await get(`/go/gp/${fresh}`)).status, 200); // from the cache: noted, not yet written
    const stop = startJanitor(s.services);
    await stop();
    assert.ok(await accessedAt(gp, fresh), 'the noted read is written');
    const recent = modPath('recent'); // not read since it was aged
    for (let i = 0; i < 100 && (await getAsset(s.services.meta.db, gp.id, recent)); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await getAsset(s.services.meta.db, gp.id, recent), null, 'swept at start');
    assert.ok(await getAsset(s.services.meta.db, gp.id, fresh), 'read just now: kept');
  });

  describe('OCI', () => {
    let up: TestServer;
    let counter: Counter;
    let img: PushedImage;
    let hub: RepositoryRecord;
    const name = 'library/alpine';
    const pull = async () => {
      const m = await get(`/v2/hub/${name}/manifests/1`, { accept: OCI_MANIFEST });
      assert.equal(m.status, 200);
      for (const d of [img.config, ...img.layers]) assert.equal((await get(`/v2/hub/${name}/blobs/${d}`)).status, 200);
    };
    const links = () => [img.config, ...img.layers].map((d) => `${name}/_blobs/${d}`);

    before(async () => {
      up = await startServer();
      await up.services.repos.create({ name: 'library', format: 'oci', anonymousRead: true }, 'test');
      img = await pushImage(up.url, ADMIN, 'library/alpine', '1', [Buffer.from('layer one'), Buffer.from('layer two')]);
      counter = await countingProxy(up.url);
      hub = await s.services.repos.create({ name: 'hub', format: 'oci', kind: 'proxy', upstream: counter.url, options: { proxy: { unusedDays: 7, retries: 0 } } }, 'test');
    });
    after(async () => {
      await counter?.close();
      await up?.close();
    });

    it('an unused image goes whole (manifest, tag, blob links) and the next pull fetches it from the upstream again', async () => {
      await pull();
      const manifestPath = `${name}/_manifests/${img.manifest}`;
      assert.ok(await getAsset(s.services.meta.db, hub.id, manifestPath));
      assert.equal((await getTag(s.services.meta.db, hub.id, name, '1'))?.target, img.manifest);
      for (const p of links()) assert.ok(await getAsset(s.services.meta.db, hub.id, p), p);

      await age(hub, { updated: DAYS_AGO(8), accessed: DAYS_AGO(8) });
      const seq = await lastEventSeq(s.services.meta.db);
      const swept = await sweepRetention(s.services);
      assert.equal(swept.find((r) => r.repository === 'hub')?.removed, 1 + links().length);
      assert.equal(await getAsset(s.services.meta.db, hub.id, manifestPath), null);
      assert.equal(await getTag(s.services.meta.db, hub.id, name, '1'), null, 'no tag left pointing at a removed manifest');
      for (const p of links()) assert.equal(await getAsset(s.services.meta.db, hub.id, p), null, p);
      const kinds = (await listEvents(s.services.meta.db, { since: seq })).filter((e) => e.repo === 'hub').map((e) => e.kind);
      assert.deepEqual(kinds.sort(), ['asset.deleted', 'asset.deleted', 'asset.deleted', 'asset.deleted', 'tag.deleted']);

      const manifestGets = counter.count('GET', `/v2/${name}/manifests/`);
      const blobGets = counter.count('GET', `/v2/${name}/blobs/`);
      await pull();
      assert.ok(counter.count('GET', `/v2/${name}/manifests/`) > manifestGets, 'manifest fetched again');
      assert.equal(counter.count('GET', `/v2/${name}/blobs/`), blobGets + links().length, 'blobs fetched again');
    });

    it('cache hits of a pull count for the manifest and its blobs', async () => {
      await age(hub, { updated: DAYS_AGO(8), accessed: null });
      await pull();
      await flushAccess(s.services);
      for (const p of [`${name}/_manifests/${img.manifest}`, ...links()]) assert.ok(await accessedAt(hub, p), `${p} accessed`);
      await sweepRetention(s.services);
      for (const p of [`${name}/_manifests/${img.manifest}`, ...links()]) assert.ok(await getAsset(s.services.meta.db, hub.id, p), `${p} kept`);
    });

    it('blob links a kept manifest needs stay, even when only the manifest was pulled', async () => {
      await age(hub, { updated: DAYS_AGO(8), accessed: DAYS_AGO(8) }, '/_blobs/');
      await s.services.meta.db.updateTable('assets').set({ accessed_at: DAYS_AGO(1) }).where('repo_id', '=', hub.id).where('path', 'like', '%/_manifests/%').execute();
      const swept = await sweepRetention(s.services);
      assert.equal(swept.find((r) => r.repository === 'hub'), undefined);
      for (const p of links()) assert.ok(await getAsset(s.services.meta.db, hub.id, p), `${p} kept for its manifest`);
    });
  });
});
