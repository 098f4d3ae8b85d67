/**
 * skopeo pulling through Granary OCI proxy repositories from real upstreams:
 * - a second Granary with auth on (Docker token auth): the proxy obtains a token, reuses it for every request of
 *   the pull (counted at the upstream's token endpoint), and wrong upstream credentials give the client a clear
 *   error with nothing cached;
 * - Debian's docker-registry (CNCF Distribution) as the upstream;
 * and in both cases: the upstream stopped, the same pull again succeeds from the cache.
 * Skips, naming the binaries, when skopeo or docker-registry is missing.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listAssets } from '../../src/meta/assets.ts';
import { proxyStats } from '../../src/repos/proxy/index.ts';
import { ADMIN_TOKEN, startServer, type TestServer } from '../helpers/server.ts';
import { countingProxy, type Counter } from '../repos/proxy/helpers.ts';
import { startRegistry, type Registry } from '../helpers/docker-registry.ts';
import { missingClient, writeOciLayout, type OciLayout } from './oci-layout.ts';
import { runTool } from './run-tool.ts';

let work: string;

async function skopeo(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const r = await runTool('skopeo', args, { authFile: join(work, 'auth.json') });
  return { code: r.code, stderr: r.stderr };
}

async function ok(args: string[]): Promise<void> {
  const r = await skopeo(args);
  assert.equal(r.code, 0, `skopeo ${args.join(' ')} failed:\n${r.stderr}`);
}

async function assertSameBlobs(src: OciLayout, backDir: string): Promise<void> {
  for (const d of src.blobs) {
    const file = join(backDir, 'blobs', 'sha256', d.slice('sha256:'.length));
    assert.ok(existsSync(file), `blob ${d} came back`);
    assert.equal(`sha256:${createHash('sha256').update(await readFile(file)).digest('hex')}`, d);
  }
}

const pull = (host: string, name: string, dir: string) => ['copy', '--src-tls-verify=false', `docker://${host}/${name}`, `oci:${join(work, dir)}:x`];

describe('skopeo through an OCI proxy in front of a Granary with token auth', { skip: missingClient('skopeo'), timeout: 300_000 }, () => {
  let up: TestServer;
  let counter: Counter;
  let px: TestServer;
  let layout: OciLayout;
  let host: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'granary-oci-proxy-'));
    up = await startServer({ config: { auth: { failedLoginLimit: 1000 } } });
    await up.services.repos.create({ name: 'priv', format: 'oci', anonymousRead: false }, 'test');
    await up.services.accounts.addUser({ name: 'puller', password: 'puller-password-1' }, 'test');
    await up.services.accounts.grant({ user: 'puller', repository: 'priv', role: 'read' }, 'test');
    layout = await writeOciLayout(join(work, 'src'), { tag: '1', layers: 2, seed: 'oci-proxy' });
    await ok(['copy', '--dest-tls-verify=false', '--dest-creds', `admin:${ADMIN_TOKEN}`, layout.ref, `docker://${new URL(up.url).host}/priv/app:1`]);
    counter = await countingProxy(up.url);
    px = await startServer();
    host = new URL(px.url).host;
    const proxy = (password: string) => ({ auth: { type: 'basic', username: 'puller', password }, retries: 0, timeoutMs: 5000 });
    await px.services.repos.create({ name: 'mirror', format: 'oci', kind: 'proxy', anonymousRead: true, upstream: counter.url, options: { proxy: proxy('puller-password-1') } }, 'test');
    await px.services.repos.create({ name: 'wrong', format: 'oci', kind: 'proxy', anonymousRead: true, upstream: counter.url, options: { proxy: proxy('not-the-password') } }, 'test');
  });
  after(async () => {
    await px?.close();
    await counter?.close();
    await up?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pulls through the proxy with one upstream token for the whole pull', async () => {
    await ok(pull(host, 'mirror/priv/app:1', 'back1'));
    await assertSameBlobs(layout, join(work, 'back1'));
    assert.equal(counter.count('GET', '/v2/token'), 1, 'one token, reused for manifest and blob requests');
    assert.equal(proxyStats(px.services).tokenFetches, 1);
    assert.ok(counter.count('GET', '/v2/priv/app/blobs/') >= layout.blobs.length - 1, 'blobs came from the upstream');
  });

  it('wrong upstream credentials: the client hears why, nothing is cached', async () => {
    const r = await skopeo(pull(host, 'wrong/priv/app:1', 'back-wrong'));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /502 Bad Gateway/, 'skopeo prints only the status of a 5xx');
    // The body says why, in the OCI error envelope (what curl or a registry UI shows).
    const res = await px.fetch('/v2/wrong/priv/app/manifests/1', { auth: null });
    assert.equal(res.status, 502);
    const body = (await res.json()) as { errors: { message: string }[] };
    assert.match(body.errors[0].message, /refused the proxy's credentials \(HTTP 401\).*check the upstream auth/);
    const wrong = (await px.services.repos.get('wrong'))!;
    assert.deepEqual(await listAssets(px.services.meta.db, { repoIds: [wrong.id] }), []);
  });

  it('keeps serving what it cached when the upstream starts refusing its credentials', async () => {
    const opts = { proxy: { auth: { type: 'basic', username: 'puller', password: 'puller-password-1' }, retries: 0, timeoutMs: 5000, metadataTtlSeconds: 0 } };
    await px.services.repos.update('mirror', { options: opts }, 'test');
    px.services.repos.invalidate();
    // The proxy's upstream account is disabled: its cached token and its password are refused from now on.
    await up.services.accounts.updateUser('puller', { disabled: true }, 'test');
    try {
      await ok(pull(host, 'mirror/priv/app:1', 'back-refused'));
      await assertSameBlobs(layout, join(work, 'back-refused'));
      const m = await px.fetch('/v2/mirror/priv/app/manifests/1', { auth: null, headers: { accept: layout.top.mediaType } });
      assert.equal(m.status, 200);
      assert.match(m.headers.get('warning') ?? '', /^110 /, 'marked stale');
      await m.arrayBuffer();
      const never = await px.fetch('/v2/mirror/priv/app/manifests/never-pulled', { auth: null });
      assert.equal(never.status, 502, 'what was never cached still fails, naming the credentials');
      assert.match(((await never.json()) as { errors: { message: string }[] }).errors[0].message, /refused the proxy's credentials \(HTTP 401\)/);
    } finally {
      await up.services.accounts.updateUser('puller', { disabled: false }, 'test');
    }
  });

  it('keeps serving the pulled image from the cache when the upstream is stopped', async () => {
    const opts = { proxy: { auth: { type: 'basic', username: 'puller', password: 'puller-password-1' }, retries: 0, timeoutMs: 5000, metadataTtlSeconds: 0 } };
    await px.services.repos.update('mirror', { options: opts }, 'test');
    px.services.repos.invalidate();
    await counter.close();
    await up.close();
    await ok(pull(host, 'mirror/priv/app:1', 'back2'));
    await assertSameBlobs(layout, join(work, 'back2'));
  });
});

describe('skopeo through an OCI proxy in front of docker-registry (Distribution)', { skip: missingClient('skopeo', 'docker-registry'), timeout: 300_000 }, () => {
  let reg: Registry;
  let px: TestServer;
  let layout: OciLayout;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'granary-oci-proxy-dist-'));
    work = dir;
    reg = await startRegistry(join(dir, 'registry'));
    layout = await writeOciLayout(join(dir, 'src'), { tag: '1', layers: 3, seed: 'oci-proxy-dist', multiArch: true });
    await ok(['copy', '--all', '--dest-tls-verify=false', layout.ref, `docker://${new URL(reg.base).host}/test/img:1`]);
    px = await startServer();
    await px.services.repos.create(
      { name: 'dist', format: 'oci', kind: 'proxy', anonymousRead: true, upstream: reg.base, options: { proxy: { metadataTtlSeconds: 0, retries: 0, timeoutMs: 5000 } } },
      'test',
    );
  });
  after(async () => {
    await px?.close();
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('copies a multi-arch image through the proxy, then again with the registry stopped', async () => {
    const host = new URL(px.url).host;
    const args = (to: string) => ['copy', '--all', '--src-tls-verify=false', `docker://${host}/dist/test/img:1`, `oci:${join(dir, to)}:x`];
    await ok(args('back1'));
    await assertSameBlobs(layout, join(dir, 'back1'));
    await reg.stop();
    await ok(args('back2'));
    await assertSameBlobs(layout, join(dir, 'back2'));
  });
});
