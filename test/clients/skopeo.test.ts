/**
 * skopeo (containers/image) against a real Granary over plain HTTP on loopback, authenticating the way it
 * does on a 401: Docker token auth via `/v2/token`. Images are OCI layouts written by the test (multi-layer,
 * and a multi-arch index), copied in and back out with every digest compared; plus v2s2 conversion,
 * wrong credentials, list-tags and delete. Skips, naming the binary, when skopeo is not installed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { missingClient, writeOciLayout, type OciLayout } from './oci-layout.ts';
import { runTool } from './run-tool.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const ALICE = 'alice:alice-password-1';
const BOB = 'bob:bob-password-123';
const ERIN = 'erin:erin-password-1';

let s: TestServer;
let work: string;
let host: string;
let aliceToken: string;

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Runs skopeo with an empty auth file of its own (never the host's credentials). */
async function skopeo(args: string[]): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  const r = await runTool('skopeo', args, { authFile: join(work, 'auth.json') });
  return { code: r.code, stdout: r.stdoutBytes, stderr: r.stderr };
}

async function ok(args: string[]): Promise<Buffer> {
  const r = await skopeo(args);
  assert.equal(r.code, 0, `skopeo ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

const ref = (name: string) => `docker://${host}/${name}`;

/** Every blob of the source layout is in the copied-back layout, byte for byte. */
async function assertSameBlobs(src: OciLayout, backDir: string): Promise<void> {
  for (const d of src.blobs) {
    const file = join(backDir, 'blobs', 'sha256', d.slice('sha256:'.length));
    assert.ok(existsSync(file), `blob ${d} came back`);
    assert.equal(sha256(await readFile(file)), d);
  }
}

async function tagsOf(name: string): Promise<string[] | null> {
  const res = await s.fetch(`/v2/${name}/tags/list`);
  if (res.status === 404) {
    await res.arrayBuffer();
    return null;
  }
  assert.equal(res.status, 200);
  return (((await res.json()) as { tags: string[] | null }).tags ?? []).sort();
}

describe('skopeo', { skip: missingClient('skopeo'), timeout: 600_000 }, () => {
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'granary-skopeo-'));
    // Wrong passwords below must not lock the users out of the tests that follow.
    s = await startServer({ config: { auth: { failedLoginLimit: 1000 } } });
    host = new URL(s.url).host;
    const { repos, accounts } = s.services;
    await repos.create({ name: 'cr', format: 'oci', anonymousRead: false }, 'test');
    for (const [spec, role] of [[ALICE, 'write'], [BOB, 'read'], [ERIN, 'delete']] as const) {
      const [name, password] = spec.split(':');
      await accounts.addUser({ name, password }, 'test');
      await accounts.grant({ user: name, repository: 'cr', role }, 'test');
    }
    aliceToken = (await accounts.createToken({ user: 'alice', name: 'skopeo' }, 'test')).token;
  });
  after(async () => {
    await s?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('copies a multi-layer image in (user:password) and back out with identical digests', async () => {
    const src = await writeOciLayout(join(work, 'single'), { tag: 'v1', layers: 3, extraBytes: 3_000_000, seed: 'skopeo-single' });
    const push = await skopeo(['--debug', 'copy', '--dest-tls-verify=false', '--dest-creds', ALICE, src.ref, ref('cr/single:v1')]);
    assert.equal(push.code, 0, push.stderr);
    assert.match(push.stderr, /GET http:\/\/[^\s"]+\/v2\/token\?[^\s"]*scope=repository%3Acr%2Fsingle%3Apull%2Cpush/, 'skopeo took a token from /v2/token');

    const raw = await ok(['inspect', '--raw', '--tls-verify=false', '--creds', BOB, ref('cr/single:v1')]);
    assert.equal(sha256(raw), src.top.digest, 'the manifest bytes are kept exactly');
    const info = JSON.parse((await ok(['inspect', '--tls-verify=false', '--creds', BOB, ref('cr/single:v1')])).toString()) as { Digest: string; Layers: string[] };
    assert.equal(info.Digest, src.top.digest);
    assert.deepEqual(info.Layers, src.images[0].layers.map((l) => l.digest));

    const back = join(work, 'single-back');
    await ok(['copy', '--src-tls-verify=false', '--src-creds', BOB, ref('cr/single:v1'), `oci:${back}:v1`]);
    const index = JSON.parse(await readFile(join(back, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.deepEqual(index.manifests.map((m) => m.digest), [src.top.digest]);
    await assertSameBlobs(src, back);
  });

  it('copies a multi-arch index with --all (user:API token) and back, index and every child identical', async () => {
    const src = await writeOciLayout(join(work, 'multi'), { tag: 'v1', multiArch: true, layers: 2, seed: 'skopeo-multi' });
    await ok(['copy', '--all', '--dest-tls-verify=false', '--dest-creds', `alice:${aliceToken}`, src.ref, ref('cr/multi:v1')]);

    const raw = await ok(['inspect', '--raw', '--tls-verify=false', '--creds', `alice:${aliceToken}`, ref('cr/multi:v1')]);
    assert.equal(sha256(raw), src.top.digest, 'the index bytes are kept exactly');
    for (const img of src.images) {
      const child = await ok(['inspect', '--raw', '--tls-verify=false', '--creds', BOB, ref(`cr/multi@${img.manifest.digest}`)]);
      assert.equal(sha256(child), img.manifest.digest);
    }

    const back = join(work, 'multi-back');
    await ok(['copy', '--all', '--src-tls-verify=false', '--src-creds', BOB, ref('cr/multi:v1'), `oci:${back}:v1`]);
    const index = JSON.parse(await readFile(join(back, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.deepEqual(index.manifests.map((m) => m.digest), [src.top.digest]);
    await assertSameBlobs(src, back);
  });

  it('converts to Docker v2 schema 2 on the way in (--format v2s2)', async () => {
    const src = await writeOciLayout(join(work, 'v2s2'), { tag: 'v1', layers: 2, seed: 'skopeo-v2s2' });
    await ok(['copy', '--format', 'v2s2', '--dest-tls-verify=false', '--dest-creds', ALICE, src.ref, ref('cr/v2s2:v1')]);
    const raw = await ok(['inspect', '--raw', '--tls-verify=false', '--creds', BOB, ref('cr/v2s2:v1')]);
    const m = JSON.parse(raw.toString()) as { mediaType: string; layers: { digest: string }[] };
    assert.equal(m.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.deepEqual(m.layers.map((l) => l.digest), src.images[0].layers.map((l) => l.digest), 'the compressed layers are reused as they are');
    const res = await s.fetch('/v2/cr/v2s2/manifests/v1', { method: 'HEAD', headers: { accept: m.mediaType } });
    assert.equal(res.headers.get('docker-content-digest'), sha256(raw));
  });

  it('refuses wrong credentials, missing credentials and a read-only user; nothing is stored', async () => {
    const src = await writeOciLayout(join(work, 'denied'), { tag: 'v1', seed: 'skopeo-denied' });
    for (const creds of [['--dest-creds', 'alice:wrong-password'], ['--dest-creds', `alice:${aliceToken}x`], [], ['--dest-creds', BOB]]) {
      const r = await skopeo(['copy', '--dest-tls-verify=false', ...creds, src.ref, ref('cr/denied:v1')]);
      assert.notEqual(r.code, 0, `push with ${creds.join(' ') || 'no credentials'} must fail`);
      assert.match(r.stderr, /unauthorized|authentication required|denied|401|403/i, r.stderr);
    }
    assert.equal(await tagsOf('cr/denied'), null, 'no tag was written');
    for (const layer of src.images[0].layers) {
      const head = await s.fetch(`/v2/cr/denied/blobs/${layer.digest}`, { method: 'HEAD' });
      assert.equal(head.status, 404, `${layer.digest} was not stored`);
    }
    const pull = await skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', 'bob:wrong-password', ref('cr/single:v1')]);
    assert.notEqual(pull.code, 0);
  });

  it('lists tags and deletes a manifest (only with the delete role)', async () => {
    const keep = await writeOciLayout(join(work, 'tags'), { tag: 'keep', seed: 'skopeo-keep' });
    const doomed = await writeOciLayout(join(work, 'tags'), { tag: 'doomed', seed: 'skopeo-doomed' });
    for (const l of [keep, doomed]) await ok(['copy', '--dest-tls-verify=false', '--dest-creds', ALICE, l.ref, ref(`cr/tags:${l.tag}`)]);
    await ok(['copy', '--dest-tls-verify=false', '--dest-creds', ALICE, keep.ref, ref('cr/tags:also')]);

    const listed = JSON.parse((await ok(['list-tags', '--tls-verify=false', '--creds', BOB, ref('cr/tags')])).toString()) as { Repository: string; Tags: string[] };
    assert.equal(listed.Repository, `${host}/cr/tags`);
    assert.deepEqual(listed.Tags.sort(), ['also', 'doomed', 'keep']);

    const denied = await skopeo(['delete', '--tls-verify=false', '--creds', ALICE, ref('cr/tags:doomed')]);
    assert.notEqual(denied.code, 0, 'write is not delete');
    await ok(['delete', '--tls-verify=false', '--creds', ERIN, ref('cr/tags:doomed')]);

    assert.deepEqual(await tagsOf('cr/tags'), ['also', 'keep']);
    const gone = await skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', BOB, ref('cr/tags:doomed')]);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /manifest unknown|not found/i, gone.stderr);
    const byDigest = await s.fetch(`/v2/cr/tags/manifests/${doomed.top.digest}`, { method: 'HEAD' });
    assert.equal(byDigest.status, 404);
    const kept = await ok(['inspect', '--raw', '--tls-verify=false', '--creds', BOB, ref('cr/tags:keep')]);
    assert.equal(sha256(kept), keep.top.digest);
  });

  it('copies registry to registry within Granary (cross-repository mount or upload), digests kept', async () => {
    const src = await writeOciLayout(join(work, 'r2r'), { tag: 'v1', layers: 2, seed: 'skopeo-r2r' });
    await ok(['copy', '--dest-tls-verify=false', '--dest-creds', ALICE, src.ref, ref('cr/r2r-a:v1')]);
    await ok(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--src-creds', ALICE, '--dest-creds', ALICE, ref('cr/r2r-a:v1'), ref('cr/r2r-b:v1')]);
    const raw = await ok(['inspect', '--raw', '--tls-verify=false', '--creds', BOB, ref('cr/r2r-b:v1')]);
    assert.equal(sha256(raw), src.top.digest);
    for (const d of src.blobs.filter((x) => x !== src.top.digest)) {
      const head = await s.fetch(`/v2/cr/r2r-b/blobs/${d}`, { method: 'HEAD' });
      assert.equal(head.status, 200, `${d} is in cr/r2r-b`);
    }
  });
});
