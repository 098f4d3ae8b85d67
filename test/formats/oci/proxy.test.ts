/**
 * OCI proxy repositories against a real upstream (a second Granary on loopback, counted at its door):
 * pull-through of manifests, blobs and tags; Docker Hub `library/` names; containerd's `?ns=` mirror mode;
 * referrers proxied; a moved tag visible after the TTL and not before; serve-stale with a Warning when the
 * upstream is gone; metrics; writes refused.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, type TestServer } from '../../helpers/server.ts';
import { countingProxy, pushImage, sha256Of, type Counter, type PushedImage } from '../../repos/proxy/helpers.ts';

const ADMIN = 'Bearer test-admin-token-0123456789abcdef';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const TTL_SECONDS = 3;

let up: TestServer;
let counter: Counter;
let px: TestServer;
let img: PushedImage;

describe('OCI proxy repository', () => {
  before(async () => {
    up = await startServer();
    await up.services.repos.create({ name: 'library', format: 'oci', anonymousRead: true }, 'test');
    img = await pushImage(up.url, ADMIN, 'library/alpine', '1', [Buffer.from('layer one'), Buffer.from('layer two')]);
    counter = await countingProxy(up.url);
    px = await startServer();
    await px.services.repos.create(
      {
        name: 'hub',
        format: 'oci',
        kind: 'proxy',
        anonymousRead: true,
        upstream: counter.url,
        options: { proxy: { dockerHubLibrary: true, hosts: ['docker.io'], metadataTtlSeconds: TTL_SECONDS, retries: 0, timeoutMs: 2000 } },
      },
      'test',
    );
  });
  after(async () => {
    await px?.close();
    await counter?.close();
    await up?.close();
  });

  it('pulls a tag through the proxy: manifest bytes and blobs as upstream, `alpine` read as `library/alpine`', async () => {
    const m = await px.fetch('/v2/hub/alpine/manifests/1', { headers: { accept: OCI_MANIFEST } });
    assert.equal(m.status, 200, await m.clone().text());
    assert.equal(m.headers.get('docker-content-digest'), img.manifest);
    assert.equal(m.headers.get('content-type'), OCI_MANIFEST);
    assert.deepEqual(Buffer.from(await m.arrayBuffer()), img.manifestBytes);
    for (const d of [img.config, ...img.layers]) {
      const b = await px.fetch(`/v2/hub/alpine/blobs/${d}`);
      assert.equal(b.status, 200);
      assert.equal(await sha256Of(b), d);
    }
    assert.equal(counter.count('GET', `/v2/library/alpine/blobs/${img.layers[0]}`), 1);
    // Second read of everything: from the cache.
    const before = counter.count('GET', '/v2/library/alpine/blobs/');
    for (const d of [img.config, ...img.layers]) {
      const b = await px.fetch(`/v2/hub/library/alpine/blobs/${d}`, { headers: { range: 'bytes=0-3' } });
      assert.equal(b.status, 206, 'cached blobs serve ranges');
      await b.arrayBuffer();
    }
    assert.equal(counter.count('GET', '/v2/library/alpine/blobs/'), before);
  });

  it('merges upstream tags into tags/list and answers NAME_UNKNOWN for names nobody has', async () => {
    const t = await px.fetch('/v2/hub/alpine/tags/list');
    assert.equal(t.status, 200);
    assert.deepEqual(((await t.json()) as { tags: string[] }).tags, ['1']);
    const none = await px.fetch('/v2/hub/nothing-here/tags/list');
    assert.equal(none.status, 404);
    assert.equal(((await none.json()) as { errors: { code: string }[] }).errors[0].code, 'NAME_UNKNOWN');
  });

  it('serves containerd mirror requests (?ns=docker.io) from the proxy for that host', async () => {
    const m = await px.fetch(`/v2/library/alpine/manifests/${img.manifest}?ns=docker.io`, { headers: { accept: OCI_MANIFEST } });
    assert.equal(m.status, 200);
    assert.equal(m.headers.get('docker-content-digest'), img.manifest);
    await m.arrayBuffer();
    const other = await px.fetch(`/v2/library/alpine/manifests/1?ns=quay.io`);
    assert.notEqual(other.status, 200, 'a host no proxy mirrors is not served by one');
    await other.arrayBuffer();
  });

  it("serves Docker's registry-mirrors form (bare /v2/library/<name>) when the proxy is the default repository", async () => {
    const d = await startServer({ config: { oci: { defaultRepository: 'hub' } } });
    try {
      await d.services.repos.create({ name: 'hub', format: 'oci', kind: 'proxy', anonymousRead: true, upstream: counter.url, options: { proxy: { dockerHubLibrary: true } } }, 'test');
      const m = await d.fetch('/v2/library/alpine/manifests/1', { method: 'HEAD', headers: { accept: OCI_MANIFEST } });
      assert.equal(m.status, 200);
      assert.equal(m.headers.get('docker-content-digest'), img.manifest);
    } finally {
      await d.close();
    }
  });

  it('mirror mode with token auth: the challenge names the proxy repository, so the token opens it', async () => {
    await px.services.repos.create({ name: 'private-mirror', format: 'oci', kind: 'proxy', upstream: counter.url, options: { proxy: { hosts: ['mirror.example'] } } }, 'test');
    const path = '/v2/library/alpine/manifests/1?ns=mirror.example';
    const first = await px.fetch(path, { auth: null, method: 'HEAD' });
    assert.equal(first.status, 401);
    const ch = first.headers.get('www-authenticate') ?? '';
    assert.match(ch, /scope="repository:private-mirror\/library\/alpine:pull"/);
    const realm = /realm="([^"]+)"/.exec(ch)![1];
    const scope = /scope="([^"]+)"/.exec(ch)![1];
    const tok = await fetch(`${realm}?service=granary&scope=${encodeURIComponent(scope)}`, { headers: { authorization: ADMIN } });
    const { token } = (await tok.json()) as { token: string };
    const again = await px.fetch(path, { auth: token, method: 'HEAD' });
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('docker-content-digest'), img.manifest);
  });

  it('proxies referrers', async () => {
    const sig = Buffer.from('signature bytes');
    const art = await pushImage(up.url, ADMIN, 'library/alpine', 'sig', [sig]);
    // Re-push that manifest with a subject so it becomes a referrer of the image.
    const body = JSON.parse(art.manifestBytes.toString()) as Record<string, unknown>;
    body.subject = { mediaType: OCI_MANIFEST, digest: img.manifest, size: img.manifestBytes.length };
    body.artifactType = 'application/vnd.example.sig';
    const bytes = Buffer.from(JSON.stringify(body));
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const put = await up.fetch(`/v2/library/alpine/manifests/${digest}`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: bytes });
    assert.equal(put.status, 201, await put.text());
    const r = await px.fetch(`/v2/hub/alpine/referrers/${img.manifest}`);
    assert.equal(r.status, 200);
    const idx = (await r.json()) as { manifests: { digest: string; artifactType?: string }[] };
    assert.deepEqual(idx.manifests.map((d) => d.digest), [digest]);
  });

  it('remembers an upstream 404 for the negative TTL', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await px.fetch('/v2/hub/alpine/manifests/absent', { method: 'HEAD' });
      assert.equal(r.status, 404);
    }
    assert.equal(counter.count('HEAD', '/v2/library/alpine/manifests/absent'), 1);
  });

  it('revalidates a tag once for many concurrent clients', async () => {
    const pushed = await pushImage(up.url, ADMIN, 'library/alpine', 'burst', [Buffer.from('burst')]);
    const got = await Promise.all(Array.from({ length: 10 }, () => px.fetch('/v2/hub/alpine/manifests/burst', { method: 'HEAD' })));
    assert.deepEqual(got.map((r) => r.headers.get('docker-content-digest')), Array(10).fill(pushed.manifest));
    assert.equal(counter.count('HEAD', '/v2/library/alpine/manifests/burst'), 1);
    assert.equal(counter.count('GET', `/v2/library/alpine/manifests/${pushed.manifest}`), 1);
  });

  it('refuses pushes to a proxy repository', async () => {
    const r = await px.fetch('/v2/hub/alpine/blobs/uploads/', { method: 'POST' });
    assert.equal(r.status, 405);
    assert.equal(((await r.json()) as { errors: { code: string }[] }).errors[0].code, 'UNSUPPORTED');
  });

  it('shows a tag moved upstream only after the TTL, confirming with HEAD', async () => {
    const a = await pushImage(up.url, ADMIN, 'library/alpine', 'moving', [Buffer.from('version a')]);
    const got = await px.fetch('/v2/hub/alpine/manifests/moving', { method: 'HEAD' });
    assert.equal(got.headers.get('docker-content-digest'), a.manifest);
    const at = Date.now();
    const b = await pushImage(up.url, ADMIN, 'library/alpine', 'moving', [Buffer.from('version b')]);
    const heads = counter.count('HEAD', '/v2/library/alpine/manifests/moving');
    const soon = await px.fetch('/v2/hub/alpine/manifests/moving', { method: 'HEAD' });
    if (Date.now() - at < TTL_SECONDS * 1000) {
      assert.equal(soon.headers.get('docker-content-digest'), a.manifest, 'within the TTL the cached tag is served');
      assert.equal(counter.count('HEAD', '/v2/library/alpine/manifests/moving'), heads, 'without asking the upstream');
    }
    await sleep(TTL_SECONDS * 1000 - (Date.now() - at) + 100);
    const later = await px.fetch('/v2/hub/alpine/manifests/moving', { headers: { accept: OCI_MANIFEST } });
    assert.equal(later.headers.get('docker-content-digest'), b.manifest, 'after the TTL the moved tag shows');
    assert.deepEqual(Buffer.from(await later.arrayBuffer()), b.manifestBytes);
    assert.equal(counter.count('HEAD', '/v2/library/alpine/manifests/moving'), heads + 1, 'revalidated with one HEAD');
  });

  it('serves the cache with a Warning when the upstream is gone; 502 for what was never cached', async () => {
    await px.services.repos.update('hub', { options: { proxy: { dockerHubLibrary: true, hosts: ['docker.io'], metadataTtlSeconds: 0, retries: 0, timeoutMs: 2000 } } }, 'test');
    px.services.repos.invalidate();
    await counter.close();
    const m = await px.fetch('/v2/hub/alpine/manifests/1', { headers: { accept: OCI_MANIFEST } });
    assert.equal(m.status, 200);
    assert.match(m.headers.get('warning') ?? '', /^110 /);
    assert.equal(m.headers.get('docker-content-digest'), img.manifest);
    await m.arrayBuffer();
    const b = await px.fetch(`/v2/hub/alpine/blobs/${img.layers[1]}`);
    assert.equal(b.status, 200);
    assert.equal(await sha256Of(b), img.layers[1]);
    const never = await px.fetch('/v2/hub/alpine/manifests/never-pulled');
    assert.equal(never.status, 502);
    assert.match(((await never.json()) as { errors: { message: string }[] }).errors[0].message, /unreachable/);
    const metrics = await (await px.fetch('/metrics')).text();
    assert.match(metrics, /granary_proxy_cache_hits_total\{repository="hub"\} [1-9]/);
    assert.match(metrics, /granary_proxy_upstream_bytes_total\{repository="hub"\} [1-9]/);
    assert.match(metrics, /granary_proxy_upstream_errors_total\{repository="hub"\} [1-9]/);
  });
});

describe('OCI proxy: an upstream that names no digest on HEAD', () => {
  it('GETs the manifest by tag, hashes it and caches it under its digest', async () => {
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: 2 }, layers: [] }));
    const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
    const { createServer } = await import('node:http');
    const old = createServer((req, res) => {
      if (req.url === '/v2/old/img/manifests/1') res.writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': String(manifest.length) }).end(req.method === 'HEAD' ? undefined : manifest);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => old.listen(0, '127.0.0.1', r));
    const s = await startServer();
    try {
      const port = (old.address() as { port: number }).port;
      await s.services.repos.create({ name: 'old', format: 'oci', kind: 'proxy', anonymousRead: true, upstream: `http://127.0.0.1:${port}`, options: { proxy: { retries: 0 } } }, 'test');
      const r = await s.fetch('/v2/old/old/img/manifests/1');
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('docker-content-digest'), digest);
      assert.deepEqual(Buffer.from(await r.arrayBuffer()), manifest);
      const byDigest = await s.fetch(`/v2/old/old/img/manifests/${digest}`, { method: 'HEAD' });
      assert.equal(byDigest.status, 200, 'cached under its digest');
    } finally {
      await s.close();
      old.closeAllConnections();
      await new Promise((r) => old.close(r));
    }
  });
});
