/**
 * OCI group repositories over hosted, proxy and nested group members: resolution order (first member with the
 * object wins), tag lists merged without duplicates, pushes through the group landing in its writeMember,
 * cycles and unknown members rejected at config time, and a caller never seeing a member it may not read.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { getTag } from '../../../src/meta/tags.ts';
import { basic, startServer, type TestServer } from '../../helpers/server.ts';
import { pushImage, type PushedImage } from '../../repos/proxy/helpers.ts';

const ADMIN = 'Bearer test-admin-token-0123456789abcdef';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

let up: TestServer;
let s: TestServer;
const imgs: Record<string, PushedImage> = {};

async function digestOf(path: string, auth?: string): Promise<string | null> {
  const r = await s.fetch(path, { method: 'HEAD', headers: { accept: OCI_MANIFEST }, ...(auth ? { auth } : {}) });
  return r.status === 200 ? r.headers.get('docker-content-digest') : null;
}

describe('OCI group repositories', () => {
  before(async () => {
    up = await startServer();
    await up.services.repos.create({ name: 'u', format: 'oci', anonymousRead: true }, 'test');
    imgs.upShared = await pushImage(up.url, ADMIN, 'u/app', 'shared', [Buffer.from('from the upstream')]);
    imgs.upOnly = await pushImage(up.url, ADMIN, 'u/app', 'up-only', [Buffer.from('only upstream')]);

    s = await startServer({ config: { auth: { failedLoginLimit: 1000 } } });
    const { repos, accounts } = s.services;
    await repos.create({ name: 'h', format: 'oci' }, 'test');
    await repos.create({ name: 'h2', format: 'oci' }, 'test');
    await repos.create({ name: 'p', format: 'oci', kind: 'proxy', upstream: `${up.url}/`, options: { proxy: { retries: 0 } } }, 'test');
    await repos.create({ name: 'inner', format: 'oci', kind: 'group', members: ['h2'] }, 'test');
    // Every member holds the image as u/app (the upstream's name), so one name works across the group.
    await repos.create({ name: 'g', format: 'oci', kind: 'group', members: ['h', 'inner', 'p'], writeMember: 'h' }, 'test');
    imgs.hShared = await pushImage(s.url, ADMIN, 'h/u/app', 'shared', [Buffer.from('from hosted h')]);
    imgs.nested = await pushImage(s.url, ADMIN, 'h2/u/app', 'nested', [Buffer.from('from nested h2')]);
    imgs.h2Shared = await pushImage(s.url, ADMIN, 'h2/u/app', 'shared', [Buffer.from('h2 copy of shared')]);

    await accounts.addUser({ name: 'reader', password: 'reader-password-1' }, 'test');
    await accounts.grant({ user: 'reader', repository: 'g', role: 'read' }, 'test');
    await accounts.grant({ user: 'reader', repository: 'h', role: 'read' }, 'test');
  });
  after(async () => {
    await s?.close();
    await up?.close();
  });

  it('resolves in member order: hosted, then the nested group, then the proxy', async () => {
    assert.equal(await digestOf('/v2/g/u/app/manifests/shared'), imgs.hShared.manifest, 'h comes first');
    assert.equal(await digestOf('/v2/g/u/app/manifests/nested'), imgs.nested.manifest, 'through the nested group');
    assert.equal(await digestOf('/v2/g/u/app/manifests/up-only'), imgs.upOnly.manifest, 'through the proxy');
    const blob = await s.fetch(`/v2/g/u/app/blobs/${imgs.upOnly.layers[0]}`);
    assert.equal(blob.status, 200);
    assert.equal(await blob.text(), 'only upstream');
    const missing = await s.fetch('/v2/g/u/app/manifests/nowhere');
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { errors: { code: string }[] }).errors[0].code, 'MANIFEST_UNKNOWN');
  });

  it('merges the tag lists of every member without duplicates', async () => {
    const r = await s.fetch('/v2/g/u/app/tags/list');
    assert.equal(r.status, 200);
    assert.deepEqual(((await r.json()) as { tags: string[] }).tags, ['nested', 'shared', 'up-only']);
  });

  it('lands a push through the group in its writeMember', async () => {
    const pushed = await pushImage(s.url, ADMIN, 'g/u/app', 'via-group', [Buffer.from('pushed via the group')]);
    const h = (await s.services.repos.get('h'))!;
    assert.equal((await getTag(s.services.meta.db, h.id, 'u/app', 'via-group'))?.target, pushed.manifest);
    assert.equal(await digestOf('/v2/h/u/app/manifests/via-group'), pushed.manifest);
    assert.equal(await digestOf('/v2/g/u/app/manifests/via-group'), pushed.manifest);
    const inner = await s.fetch('/v2/inner/u/app/blobs/uploads/', { method: 'POST' });
    assert.equal(inner.status, 405, 'a group without writeMember refuses pushes');
    assert.match(((await inner.json()) as { errors: { message: string }[] }).errors[0].message, /no writeMember/);
  });

  it('rejects cycles and unknown members at config time', async () => {
    await assert.rejects(s.services.repos.update('inner', { members: ['h2', 'g'] }, 'test'), /cycle: inner → g → inner/);
    await assert.rejects(s.services.repos.create({ name: 'bad', format: 'oci', kind: 'group', members: ['nope'] }, 'test'), /unknown repository "nope"/);
    const api = await s.api('PATCH', '/repositories/inner', { members: ['g'] });
    assert.equal(api.status, 400);
  });

  it('never shows a caller members it may not read', async () => {
    const reader = basic('reader', 'reader-password-1');
    assert.equal(await digestOf('/v2/g/u/app/manifests/shared', reader), imgs.hShared.manifest, 'h is readable');
    assert.equal(await digestOf('/v2/g/u/app/manifests/nested', reader), null, 'h2 (through inner) is not');
    assert.equal(await digestOf('/v2/g/u/app/manifests/up-only', reader), null, 'p is not');
    const r = await s.fetch('/v2/g/u/app/tags/list', { auth: reader });
    assert.deepEqual(((await r.json()) as { tags: string[] }).tags, ['shared', 'via-group']);
    const blob = await s.fetch(`/v2/g/u/app/blobs/${imgs.nested.layers[0]}`, { auth: reader });
    assert.equal(blob.status, 404);
    await blob.arrayBuffer();
  });

  it('passes over a proxy member whose upstream is down when a later member has the object', async () => {
    await s.services.repos.create({ name: 'proxy-first', format: 'oci', kind: 'group', members: ['p', 'h'] }, 'test');
    await up.close();
    assert.equal(await digestOf('/v2/proxy-first/u/app/manifests/shared'), imgs.hShared.manifest, 'from h, after p failed');
    assert.equal(await digestOf('/v2/proxy-first/u/app/manifests/up-only'), imgs.upOnly.manifest, "p's cached copy");
    const none = await s.fetch('/v2/proxy-first/u/app/manifests/nobody-has-it');
    assert.equal(none.status, 502, 'nobody had it and an upstream failed: that failure is the answer');
    await none.arrayBuffer();
  });
});
