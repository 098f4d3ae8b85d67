/**
 * Push mirroring to Debian's docker-registry (CNCF Distribution 2.8): an image pushed with skopeo and a referrer
 * (an SBOM artifact whose subject is the image) pushed over the OCI API are copied as they arrive — digests
 * unchanged, the referrer reachable through the referrers tag schema since Distribution 2.8 has no referrers API
 * — tags outside the rule's globs stay home; the same to a second Granary that needs credentials (Basic) and has
 * the referrers API (the mirror takes a Docker registry token there); and a rule whose remote is down retries and
 * reports it. A pull rule reads the image and its referrer back from docker-registry into another repository.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, basic, startServer, type TestServer } from '../helpers/server.ts';
import { missingClient, writeOciLayout, type OciLayout } from '../clients/oci-layout.ts';
import { runTool } from '../clients/run-tool.ts';
import { lastEventSeq } from '../../src/meta/events.ts';
import { until, noKeepAlive } from './helpers.ts';
import { startRegistry, type Registry } from '../helpers/docker-registry.ts';

noKeepAlive();

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const EMPTY = { mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 };
const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let work: string;
let registry: Registry | undefined;
let remote: string;
let g: TestServer;
/** A second Granary as a remote that needs credentials and has the referrers API. */
let g2: TestServer;
let refDigest: string;
let img: OciLayout;

/** Pushes a blob to Granary's OCI API (admin, Basic) with a monolithic PUT. */
async function pushBlob(image: string, body: Buffer): Promise<string> {
  const auth = basic('admin', ADMIN_TOKEN);
  const start = await g.fetch(`/v2/images/${image}/blobs/uploads/`, { method: 'POST', auth });
  assert.equal(start.status, 202, await start.text());
  const digest = sha256(body);
  const loc = new URL(start.headers.get('location')!, g.url);
  loc.searchParams.set('digest', digest);
  const put = await fetch(loc, { method: 'PUT', body, headers: { authorization: auth, 'content-type': 'application/octet-stream' } });
  assert.equal(put.status, 201, await put.text());
  return digest;
}

interface MirrorStatus {
  name: string;
  state: string;
  position: number;
  pushed: number;
  attempts: number;
  lastError: string | null;
}
const mirrors = async () => (await g.api<{ mirrors: MirrorStatus[] }>('GET', '/replication/mirrors')).body.mirrors;

describe('mirroring with docker-registry', { skip: missingClient('docker-registry', 'skopeo'), timeout: 120_000 }, () => {
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'granary-mirror-'));
    registry = await startRegistry(join(work, 'docker-registry'), { deletes: false });
    remote = registry.base;
    g2 = await startServer({ config: { repositories: [{ name: 'dest', format: 'oci' }] } });
    g = await startServer({
      config: {
        repositories: [
          { name: 'images', format: 'oci' },
          { name: 'pulled', format: 'oci' },
        ],
        replication: {
          mirrors: [
            { name: 'hub', repository: 'images', url: remote, prefix: 'mirror', images: ['app'], tags: ['v*'] },
            { name: 'down', repository: 'images', url: 'http://127.0.0.1:9', images: ['**'], tags: ['**'] },
            // Reads back what the hub rule pushed to docker-registry, referrers tag schema included.
            { name: 'pull', direction: 'pull', intervalSeconds: 1, repository: 'pulled', url: remote, prefix: 'mirror', images: ['app'], tags: ['v*'] },
            { name: 'granary', repository: 'images', url: g2.url, prefix: 'dest', images: ['app'], tags: ['v1'], username: 'admin', password: ADMIN_TOKEN },
          ],
        },
      },
    });
    img = await writeOciLayout(join(work, 'layout'), { tag: 'v1', layers: 2, seed: 'mirror' });
  });
  after(async () => {
    await g?.close();
    await g2?.close();
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('copies a tagged image and its referrer with digests preserved; other tags stay home', async () => {
    const host = new URL(g.url).host;
    const auth = join(work, 'auth.json');
    for (const tag of ['v1', 'dev']) {
      const r = await runTool('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', `admin:${ADMIN_TOKEN}`, img.ref, `docker://${host}/images/app:${tag}`], { authFile: auth });
      assert.equal(r.code, 0, r.stderr);
    }
    // An SBOM artifact whose subject is v1: pushed by digest only, as referrers are.
    await pushBlob('app', Buffer.from('{}'));
    const sbom = Buffer.from('{"spdxVersion":"SPDX-2.3","name":"app"}');
    const sbomDigest = await pushBlob('app', sbom);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: 'application/spdx+json',
        config: EMPTY,
        layers: [{ mediaType: 'application/spdx+json', digest: sbomDigest, size: sbom.length }],
        subject: { mediaType: img.top.mediaType, digest: img.top.digest, size: img.top.size },
      }),
    );
    refDigest = sha256(manifest);
    const put = await g.fetch(`/v2/images/app/manifests/${refDigest}`, { method: 'PUT', body: manifest, auth: basic('admin', ADMIN_TOKEN), headers: { 'content-type': OCI_MANIFEST } });
    assert.equal(put.status, 201, await put.text());

    const last = await lastEventSeq(g.services.meta.db);
    await until('the hub rule to pass every event', async () => {
      const hub = (await mirrors()).find((m) => m.name === 'hub')!;
      return hub.position >= last && hub.state === 'idle' ? hub : undefined;
    }, 60_000, async () => JSON.stringify(await mirrors()));

    const raw = await runTool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${new URL(remote).host}/mirror/app:v1`], { authFile: auth });
    assert.equal(raw.code, 0, raw.stderr);
    assert.equal(sha256(raw.stdoutBytes), img.top.digest, 'the remote serves the very manifest bytes');
    for (const d of img.blobs.filter((b) => b !== img.top.digest)) {
      const head = await fetch(`${remote}/v2/mirror/app/blobs/${d}`, { method: 'HEAD' });
      assert.equal(head.status, 200, `blob ${d} on the remote`);
    }
    const ref = await fetch(`${remote}/v2/mirror/app/manifests/${refDigest}`, { headers: { accept: OCI_MANIFEST } });
    assert.equal(ref.status, 200);
    assert.equal(sha256(Buffer.from(await ref.arrayBuffer())), refDigest, 'the referrer keeps its digest');
    assert.equal((await fetch(`${remote}/v2/mirror/app/blobs/${sbomDigest}`, { method: 'HEAD' })).status, 200);
    const tagIndex = await fetch(`${remote}/v2/mirror/app/manifests/sha256-${img.top.digest.slice(7)}`, { headers: { accept: OCI_INDEX } });
    assert.equal(tagIndex.status, 200, 'referrers tag schema on a registry without the referrers API');
    const listed = ((await tagIndex.json()) as { manifests: { digest: string; artifactType?: string }[] }).manifests;
    assert.deepEqual(
      listed.map((m) => [m.digest, m.artifactType]),
      [[refDigest, 'application/spdx+json']],
    );
    const dev = await fetch(`${remote}/v2/mirror/app/manifests/dev`, { headers: { accept: OCI_MANIFEST } });
    assert.equal(dev.status, 404, 'a tag outside the rule is not mirrored');
  });

  it('copies to a registry that needs credentials and serves the referrers API', async () => {
    const last = await lastEventSeq(g.services.meta.db);
    await until('the granary rule to pass every event', async () => {
      const m = (await mirrors()).find((x) => x.name === 'granary')!;
      return m.position >= last && m.state === 'idle' ? m : undefined;
    }, 60_000, async () => JSON.stringify(await mirrors()));
    const auth = basic('admin', ADMIN_TOKEN);
    const anon = await g2.fetch('/v2/dest/app/manifests/v1', { auth: null, headers: { accept: OCI_MANIFEST } });
    assert.equal(anon.status, 401, 'the remote does need credentials');
    const m = await g2.fetch('/v2/dest/app/manifests/v1', { auth, headers: { accept: OCI_MANIFEST } });
    assert.equal(m.status, 200);
    assert.equal(sha256(Buffer.from(await m.arrayBuffer())), img.top.digest);
    const refs = await g2.fetch(`/v2/dest/app/referrers/${img.top.digest}`, { auth });
    assert.equal(refs.status, 200);
    assert.deepEqual(((await refs.json()) as { manifests: { digest: string }[] }).manifests.map((d) => d.digest), [refDigest]);
    const schemaTag = await g2.fetch(`/v2/dest/app/manifests/sha256-${img.top.digest.slice(7)}`, { auth, headers: { accept: OCI_INDEX } });
    assert.equal(schemaTag.status, 404, 'no referrers tag where the referrers API exists');
    const metrics = await (await g2.fetch('/metrics')).text();
    assert.match(metrics, /granary_http_requests_total\{method="GET",route="\/v2\/token"[^}]*status="200"\} [1-9]/, 'the mirror took a Docker registry token');
  });

  it('pulls tags and their referrers from a remote on a schedule, digests preserved', async () => {
    const auth = basic('admin', ADMIN_TOKEN);
    const got = await until('the pull rule to copy app:v1', async () => {
      const r = await g.fetch('/v2/pulled/app/manifests/v1', { auth, headers: { accept: OCI_MANIFEST } });
      return r.status === 200 ? Buffer.from(await r.arrayBuffer()) : (await r.body?.cancel(), undefined);
    }, 60_000);
    assert.equal(sha256(got), img.top.digest);
    const dir = join(work, 'pulled-back');
    const r = await runTool('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', `admin:${ADMIN_TOKEN}`, `docker://${new URL(g.url).host}/pulled/app:v1`, `oci:${dir}:x`], {
      authFile: join(work, 'auth.json'),
    });
    assert.equal(r.code, 0, r.stderr);
    const refs = await until('the referrer to be pulled', async () => {
      const res = await g.fetch(`/v2/pulled/app/referrers/${img.top.digest}`, { auth });
      const list = ((await res.json()) as { manifests: { digest: string }[] }).manifests;
      return list.length ? list : undefined;
    });
    assert.deepEqual(refs.map((d) => d.digest), [refDigest]);
    const pull = (await mirrors()).find((m) => m.name === 'pull')!;
    assert.ok(pull.pushed >= 1 && pull.lastError === null, JSON.stringify(pull));
  });

  it('retries a rule whose remote is down, with the error in its status and metrics', async () => {
    const down = await until('the down rule to retry', async () => {
      const m = (await mirrors()).find((x) => x.name === 'down')!;
      return m.attempts >= 2 ? m : undefined;
    });
    assert.equal(down.state, 'retrying');
    assert.match(down.lastError ?? '', /ECONNREFUSED|connect/i);
    const metrics = await (await g.fetch('/metrics')).text();
    assert.match(metrics, /granary_mirror_pushes_total\{rule="hub",result="ok"\} [2-9]/);
    assert.match(metrics, /granary_mirror_pushes_total\{rule="down",result="error"\} [1-9]/);
  });
});
