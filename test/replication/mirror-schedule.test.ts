/**
 * Scheduled push mirroring to Debian's docker-registry (Distribution 2.8, deletes enabled): images pushed to Granary
 * before the rule existed reach the remote through reconciliation alone (the rule's event position is set past
 * their events, so event replay cannot be what copies them), digests unchanged — a single image and a multi-arch
 * index; a manifest deleted on the remote comes back with the next pass; an image and a tag outside the rule's globs
 * never arrive; status and metrics count the passes and copies.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, startServer, type TestServer } from '../helpers/server.ts';
import { createTestDatabase, type TestPg } from '../helpers/pg.ts';
import { missingClient, writeOciLayout, type OciLayout } from '../clients/oci-layout.ts';
import { runTool } from '../clients/run-tool.ts';
import { lastEventSeq } from '../../src/meta/events.ts';
import { setSetting } from '../../src/meta/settings.ts';
import { until, noKeepAlive } from './helpers.ts';
import { startRegistry, type Registry } from '../helpers/docker-registry.ts';

noKeepAlive();

const ACCEPT = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json'].join(', ');
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Status {
  name: string;
  state: string;
  pushed: number;
  lastError: string | null;
  reconciliations: number;
  lastReconciled: { at: string; tags: number; copied: number } | null;
}

let work: string;
let registry: Registry | undefined;
let g: TestServer | undefined;
let pgdb: TestPg | undefined;
let app: OciLayout;
let kit: OciLayout;

const status = async () => (await g!.api<{ mirrors: Status[] }>('GET', '/replication/mirrors')).body.mirrors.find((m) => m.name === 'sched')!;

/** The remote's manifest for `name:ref`: the bytes' digest, or null on 404. */
async function remoteDigest(name: string, ref: string): Promise<string | null> {
  const res = await fetch(`${registry!.base}/v2/${name}/manifests/${ref}`, { headers: { accept: ACCEPT } });
  if (res.status === 404) return (await res.body?.cancel(), null);
  assert.equal(res.status, 200, `GET ${name}:${ref} on the remote`);
  return sha256(Buffer.from(await res.arrayBuffer()));
}

describe('scheduled push mirroring with docker-registry', { skip: missingClient('docker-registry', 'skopeo'), timeout: 120_000 }, () => {
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'granary-mirror-schedule-'));
    registry = await startRegistry(join(work, 'docker-registry'));
    // Both servers below share one data dir; with PostgreSQL they must share one database too.
    let database: Record<string, unknown> | undefined;
    if (process.env.GRANARY_TEST_DATABASE === 'postgres') {
      const db = await createTestDatabase();
      if (typeof db === 'string') throw new Error(db);
      pgdb = db;
      database = { driver: 'postgres', url: db.url, poolSize: 5 };
    }
    const dataDir = join(work, 'granary');
    await mkdir(dataDir);
    const repositories = [{ name: 'images', format: 'oci' }];

    // Before the rule exists: two images it covers, one image and one tag it does not.
    const before = await startServer({ dataDir, config: { repositories, ...(database ? { database } : {}) } });
    app = await writeOciLayout(join(work, 'app'), { tag: 'v1', seed: 'sched-app' });
    kit = await writeOciLayout(join(work, 'kit'), { tag: 'v2', seed: 'sched-kit', multiArch: true });
    const host = new URL(before.url).host;
    const auth = join(work, 'auth.json');
    for (const [ref, dest] of [
      [app.ref, 'images/app:v1'],
      [app.ref, 'images/app:dev'],
      [kit.ref, 'images/tools/kit:v2'],
      [kit.ref, 'images/other:v2'],
    ]) {
      const r = await runTool('skopeo', ['copy', '--all', '--dest-tls-verify=false', '--dest-creds', `admin:${ADMIN_TOKEN}`, ref, `docker://${host}/${dest}`], { authFile: auth });
      assert.equal(r.code, 0, r.stderr);
    }
    // Event replay from position 0 would copy these too; past them, only reconciliation can.
    await setSetting(before.services.meta.db, 'mirror.sched.position', String(await lastEventSeq(before.services.meta.db)));
    await before.close();

    g = await startServer({
      dataDir,
      config: {
        repositories,
        ...(database ? { database } : {}),
        replication: {
          mirrors: [{ name: 'sched', repository: 'images', url: registry.base, prefix: 'sched', images: ['app', 'tools/*'], tags: ['v*'], intervalSeconds: 1 }],
        },
      },
    });
  });
  after(async () => {
    await g?.close();
    await registry?.stop();
    await pgdb?.drop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('copies images pushed before the rule existed, digests preserved', async () => {
    await until('both images on the remote', async () => ((await remoteDigest('sched/app', 'v1')) && (await remoteDigest('sched/tools/kit', 'v2')) ? true : undefined), 60_000, async () => JSON.stringify(await status()));
    assert.equal(await remoteDigest('sched/app', 'v1'), app.top.digest);
    assert.equal(await remoteDigest('sched/tools/kit', 'v2'), kit.top.digest, 'the index keeps its digest');
    for (const img of kit.images) assert.equal(await remoteDigest('sched/tools/kit', img.manifest.digest), img.manifest.digest, 'each child manifest too');
    for (const d of [...app.blobs, ...kit.blobs].filter((b) => b !== app.top.digest && b !== kit.top.digest && !kit.images.some((i) => i.manifest.digest === b))) {
      const name = app.blobs.includes(d) ? 'sched/app' : 'sched/tools/kit';
      assert.equal((await fetch(`${registry!.base}/v2/${name}/blobs/${d}`, { method: 'HEAD' })).status, 200, `blob ${d} on the remote`);
    }
    const s = await until('a completed pass', async () => ((await status()).reconciliations >= 1 ? status() : undefined));
    assert.ok(s.pushed >= 2, JSON.stringify(s));
    assert.equal(s.lastError, null);
    assert.equal(s.lastReconciled?.tags, 2, 'two local tags match the rule');
  });

  it('re-pushes a manifest the remote lost, with the next pass', async () => {
    // Read first: a pass may re-push between the DELETE and any later look at the remote or the status.
    const pushedBefore = (await status()).pushed;
    const del = await fetch(`${registry!.base}/v2/sched/app/manifests/${app.top.digest}`, { method: 'DELETE' });
    assert.equal(del.status, 202, await del.text());
    await until('app:v1 back on the remote', async () => ((await remoteDigest('sched/app', 'v1')) ? true : undefined), 60_000, async () => JSON.stringify(await status()));
    assert.equal(await remoteDigest('sched/app', 'v1'), app.top.digest);
    assert.equal(await remoteDigest('sched/tools/kit', 'v2'), kit.top.digest, 'the other image is untouched');
    const s = await status();
    assert.ok(s.pushed > pushedBefore, `a copy after the delete: ${JSON.stringify(s)}`);
    const metrics = await (await g!.fetch('/metrics')).text();
    assert.match(metrics, /granary_mirror_pushes_total\{rule="sched",result="ok"\} [3-9]/);
  });

  it('leaves images and tags outside the globs at home, pass after pass', async () => {
    const seen = (await status()).reconciliations;
    await until('two more passes', async () => ((await status()).reconciliations >= seen + 2 ? true : undefined), 60_000);
    assert.equal(await remoteDigest('sched/other', 'v2'), null, 'an image outside the rule');
    assert.equal(await remoteDigest('other', 'v2'), null, 'not without the prefix either');
    assert.equal(await remoteDigest('sched/app', 'dev'), null, 'a tag outside the rule');
    const s = await status();
    assert.equal(s.lastReconciled?.copied, 0, 'a pass over an up-to-date remote copies nothing');
    assert.equal(s.lastError, null);
    assert.notEqual(s.state, 'retrying');
  });
});
