/**
 * Registry JWTs grant per image name, not per Granary repository: a token for `team/app` pushes and pulls
 * `team/app` only, although its user may write all of `team`. A request outside the token's images gets 401 with
 * a challenge naming the image's scope (so clients fetch a token for it); a cross-repository mount needs pull on
 * the `from` image (else the spec's fallback: a plain upload session); Basic credentials keep their roles; the
 * default repository's short names and the catalog scope keep working.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { ADMIN_TOKEN, basic, startServer, type TestServer } from '../../helpers/server.ts';
import { pushBlob, pushImage, type PushedImage } from '../../repos/proxy/helpers.ts';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const WES = basic('wes', 'wes-password-1');

let s: TestServer;
let other: PushedImage;

before(async () => {
  s = await startServer({ config: { oci: { tokenTtlSeconds: 120, defaultRepository: 'lib' } } });
  const { repos, accounts } = s.services;
  await repos.create({ name: 'team', format: 'oci', anonymousRead: false }, 'test');
  await repos.create({ name: 'lib', format: 'oci', anonymousRead: false }, 'test');
  await accounts.addUser({ name: 'wes', password: 'wes-password-1' }, 'test');
  await accounts.grant({ user: 'wes', repository: 'team', role: 'write' }, 'test');
  await accounts.grant({ user: 'wes', repository: 'lib', role: 'write' }, 'test');
  // Basic credentials are not scoped: wes's roles let him push any image of `team`.
  other = await pushImage(s.url, WES, 'team/other', 'v1', [Buffer.from('a layer of team/other')]);
});
after(async () => {
  await s?.close();
});

/** A bearer header for a token with these scopes, requested as `auth`; asserts what was granted. */
async function token(scopes: string[], auth: string = WES): Promise<string> {
  const q = new URLSearchParams({ service: 'granary' });
  for (const sc of scopes) q.append('scope', sc);
  const res = await s.fetch(`/v2/token?${q}`, { auth });
  const body = (await res.json()) as { token: string };
  assert.equal(res.status, 200, JSON.stringify(body));
  const granted = (decodeJwt(body.token).access as { actions: string[] }[]).map((a) => a.actions.length > 0);
  assert.ok(granted.every(Boolean), `every scope granted: ${scopes.join(' ')}`);
  return `Bearer ${body.token}`;
}

/** Asserts a 401 in OCI's envelope whose challenge asks for `scope` (insufficient_scope). */
async function needsScope(res: Response, scope: string): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, 401, text);
  assert.equal((JSON.parse(text) as { errors: { code: string }[] }).errors[0].code, 'UNAUTHORIZED', text);
  const h = res.headers.get('www-authenticate') ?? '';
  assert.equal(h, `Bearer realm="${s.url}/v2/token",service="granary",scope="${scope}",error="insufficient_scope"`);
}

const head = async (path: string) => (await s.fetch(path, { method: 'HEAD' })).status;

describe('a token for team/app', () => {
  let app: string;
  before(async () => {
    app = await token(['repository:team/app:pull,push']);
  });

  it('pushes and pulls team/app', async () => {
    const img = await pushImage(s.url, app, 'team/app', 'v1', [Buffer.from('a layer of team/app')]);
    const res = await s.fetch('/v2/team/app/manifests/v1', { auth: app, headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), img.manifest);
    await res.arrayBuffer();
  });

  it('cannot push team/other, though its user may: 401 asking for repository:team/other:pull,push', async () => {
    const blob = Buffer.from('must not land in team/other');
    const post = await s.fetch(`/v2/team/other/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', auth: app, body: blob });
    await needsScope(post, 'repository:team/other:pull,push');
    assert.equal(await head(`/v2/team/other/blobs/${sha256(blob)}`), 404, 'nothing was stored');
    const put = await s.fetch('/v2/team/other/manifests/v2', {
      method: 'PUT',
      auth: app,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: other.manifestBytes,
    });
    await needsScope(put, 'repository:team/other:pull,push');
    assert.equal(await head('/v2/team/other/manifests/v2'), 404, 'no tag was written');
  });

  it('cannot pull team/other: 401 asking for repository:team/other:pull', async () => {
    await needsScope(await s.fetch('/v2/team/other/manifests/v1', { auth: app }), 'repository:team/other:pull');
    await needsScope(await s.fetch(`/v2/team/other/blobs/${other.config}`, { auth: app }), 'repository:team/other:pull');
    await needsScope(await s.fetch('/v2/team/other/tags/list', { auth: app }), 'repository:team/other:pull');
  });

  it('a pull-only token cannot look at an upload session: uploads are pushing', async () => {
    const start = await s.fetch('/v2/team/app/blobs/uploads/', { method: 'POST', auth: app });
    assert.equal(start.status, 202, await start.text());
    const location = start.headers.get('location')!;
    const pullOnly = await token(['repository:team/app:pull']);
    await needsScope(await s.fetch(location, { auth: pullOnly }), 'repository:team/app:pull,push');
    assert.equal((await s.fetch(location, { method: 'DELETE', auth: app })).status, 204);
  });
});

describe('cross-repository mount', () => {
  const mountUrl = (digest: string) => `/v2/team/app/blobs/uploads/?mount=${digest}&from=team/other`;

  it('from an image the token does not name: no mount, a plain upload session instead (the spec fallback)', async () => {
    const app = await token(['repository:team/app:pull,push']);
    const res = await s.fetch(mountUrl(other.layers[0]), { method: 'POST', auth: app });
    assert.equal(res.status, 202, await res.text());
    assert.match(res.headers.get('location') ?? '', /^\/v2\/team\/app\/blobs\/uploads\/[0-9a-f-]+$/);
    assert.equal(await head(`/v2/team/app/blobs/${other.layers[0]}`), 404, 'the blob was not linked into team/app');
    assert.equal((await s.fetch(res.headers.get('location')!, { method: 'DELETE', auth: app })).status, 204);
  });

  it('with pull on the from image too: mounted', async () => {
    const both = await token(['repository:team/app:pull,push', 'repository:team/other:pull']);
    const res = await s.fetch(mountUrl(other.layers[0]), { method: 'POST', auth: both });
    assert.equal(res.status, 201, await res.text());
    assert.equal(res.headers.get('location'), `/v2/team/app/blobs/${other.layers[0]}`);
    assert.equal(await head(`/v2/team/app/blobs/${other.layers[0]}`), 200);
  });
});

describe('delete, short names, catalog', () => {
  it('delete is granted per image too', async () => {
    const doomed = await pushImage(s.url, WES, 'team/doomed', 'v1', [Buffer.from('a layer of team/doomed')]);
    const admin = basic('admin', ADMIN_TOKEN);
    const forApp = await token(['repository:team/app:*'], admin);
    await needsScope(await s.fetch(`/v2/team/doomed/manifests/${doomed.manifest}`, { method: 'DELETE', auth: forApp }), 'repository:team/doomed:delete');
    assert.equal(await head(`/v2/team/doomed/manifests/${doomed.manifest}`), 200, 'still there');
    // A bare `delete`, as crane asks for (containers/image asks for `*`).
    const forDoomed = await token(['repository:team/doomed:delete'], admin);
    await needsScope(await s.fetch(`/v2/team/doomed/manifests/v1`, { auth: forDoomed }), 'repository:team/doomed:pull');
    assert.equal((await s.fetch(`/v2/team/doomed/manifests/${doomed.manifest}`, { method: 'DELETE', auth: forDoomed })).status, 202);
    assert.equal(await head(`/v2/team/doomed/manifests/${doomed.manifest}`), 404, 'gone');
    // Cancelling an upload is pushing: a delete-only token may not; a push token may.
    const push = await token(['repository:team/app:pull,push']);
    const start = await s.fetch('/v2/team/app/blobs/uploads/', { method: 'POST', auth: push });
    assert.equal(start.status, 202);
    const upload = new URL(start.headers.get('location')!, s.url).pathname;
    await needsScope(await s.fetch(upload, { method: 'DELETE', auth: await token(['repository:team/app:delete'], admin) }), 'repository:team/app:pull,push');
    assert.equal((await s.fetch(upload, { method: 'DELETE', auth: push })).status, 204);
  });

  it('an image of the default repository, by its short name', async () => {
    const alpine = await token(['repository:alpine:pull,push']);
    await pushImage(s.url, alpine, 'alpine', 'v1', [Buffer.from('a layer of alpine')]);
    assert.equal((await s.fetch('/v2/alpine/tags/list', { auth: alpine })).status, 200);
    const blob = Buffer.from('not for busybox');
    await needsScope(await s.fetch(`/v2/busybox/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', auth: alpine, body: blob }), 'repository:busybox:pull,push');
    // Basic credentials reach it through its long name as well.
    assert.equal(await pushBlob(s.url, WES, 'lib/busybox', blob), sha256(blob));
  });

  it('the catalog scope still lists what the user may read', async () => {
    const t = await token(['registry:catalog:*', 'repository:team/app:pull']);
    const res = await s.fetch('/v2/_catalog', { auth: t });
    const body = (await res.json()) as { repositories: string[] };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.ok(body.repositories.includes('team/app') && body.repositories.includes('team/other'), JSON.stringify(body));
  });
});

describe('a token for an image of a group', () => {
  before(async () => {
    const { repos, accounts } = s.services;
    await repos.create({ name: 'all', format: 'oci', kind: 'group', anonymousRead: false, members: ['team'], writeMember: 'team' }, 'test');
    await accounts.grant({ user: 'wes', repository: 'all', role: 'write' }, 'test');
  });

  it('pulls through the group: the token names the group, the members are checked against roles', async () => {
    const t = await token(['repository:all/other:pull']);
    const res = await s.fetch('/v2/all/other/manifests/v1', { auth: t, headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get('docker-content-digest'), other.manifest);
    await res.arrayBuffer();
    await needsScope(await s.fetch('/v2/all/app/manifests/v1', { auth: t }), 'repository:all/app:pull');
  });

  it('pushes through the group into its write member', async () => {
    const t = await token(['repository:all/via-group:pull,push']);
    const img = await pushImage(s.url, t, 'all/via-group', 'v1', [Buffer.from('a layer pushed through a group')]);
    const res = await s.fetch('/v2/team/via-group/manifests/v1', { auth: WES, method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), img.manifest);
  });
});
