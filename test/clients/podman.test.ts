/**
 * podman (vfs storage in temp dirs, as root, plain HTTP) against a real Granary with Docker token auth:
 * push an image, pull it into a fresh store with the same digest, push a new tag (blobs found by HEAD, only
 * the manifest is sent), push to a NEW name so podman tries a cross-repository mount — and check Granary
 * linked the blobs into the new name — and `podman login`. Skips, naming the binary, when podman is missing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { missingClient, writeOciLayout } from './oci-layout.ts';
import { runTool, type ToolRun } from './run-tool.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const ALICE = 'alice:alice-password-1';
const BOB = 'bob:bob-password-123';

let s: TestServer;
let work: string;
let host: string;

type Ran = ToolRun;

/** podman with its own vfs store (`store` names it), run dir, tmp dir and auth file; no events, no systemd. */
function podman(store: string, args: string[]): Promise<Ran> {
  const root = join(work, store);
  const global = [
    '--storage-driver', 'vfs',
    '--root', join(root, 'root'),
    '--runroot', join(root, 'run'),
    '--tmpdir', join(root, 'tmp'),
    '--events-backend', 'none',
    '--cgroup-manager', 'cgroupfs',
  ];
  return runTool('podman', [...global, ...args], { authFile: join(work, `${store}-auth.json`) });
}

async function ok(store: string, args: string[]): Promise<Ran> {
  const r = await podman(store, args);
  assert.equal(r.code, 0, `podman ${args.join(' ')} failed:\n${r.stderr}`);
  return r;
}

async function manifestDigest(name: string, ref: string): Promise<string | null> {
  const res = await s.fetch(`/v2/${name}/manifests/${ref}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
  });
  return res.status === 200 ? res.headers.get('docker-content-digest') : null;
}

async function manifestOf(name: string, ref: string): Promise<{ config: { digest: string }; layers: { digest: string }[] }> {
  const res = await s.fetch(`/v2/${name}/manifests/${ref}`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
  });
  assert.equal(res.status, 200);
  return (await res.json()) as { config: { digest: string }; layers: { digest: string }[] };
}

describe('podman', { skip: missingClient('podman'), timeout: 600_000 }, () => {
  let pushed: string;

  before(async () => {
    // Lower case only: `podman pull oci:<dir>` names the image after the path.
    work = join(tmpdir(), `granary-podman-${randomBytes(6).toString('hex')}`);
    await mkdir(work);
    s = await startServer({ config: { auth: { failedLoginLimit: 1000 } } });
    host = new URL(s.url).host;
    const { repos, accounts } = s.services;
    await repos.create({ name: 'pm', format: 'oci', anonymousRead: false }, 'test');
    await accounts.addUser({ name: 'alice', password: ALICE.split(':')[1] }, 'test');
    await accounts.grant({ user: 'alice', repository: 'pm', role: 'write' }, 'test');
    await accounts.addUser({ name: 'bob', password: BOB.split(':')[1] }, 'test');
    await accounts.grant({ user: 'bob', repository: 'pm', role: 'read' }, 'test');
  });
  after(async () => {
    await s?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pushes an image (podman push --tls-verify=false --creds)', async () => {
    const layout = await writeOciLayout(join(work, 'layout'), { tag: 'v1', layers: 3, extraBytes: 1_000_000, seed: 'podman' });
    await ok('a', ['pull', layout.ref]);
    const id = (await ok('a', ['images', '--quiet', '--no-trunc'])).stdout.trim().split('\n')[0];
    assert.match(id, /^sha256:[a-f0-9]{64}$/);
    const digestFile = join(work, 'a.digest');
    await ok('a', ['push', '--tls-verify=false', '--creds', ALICE, '--digestfile', digestFile, id, `docker://${host}/pm/img:1`]);
    pushed = (await readFile(digestFile, 'utf8')).trim();
    assert.equal(await manifestDigest('pm/img', '1'), pushed);
    const m = await manifestOf('pm/img', '1');
    assert.equal(m.layers.length, 3);
    for (const d of [m.config.digest, ...m.layers.map((l) => l.digest)]) {
      const head = await s.fetch(`/v2/pm/img/blobs/${d}`, { method: 'HEAD' });
      assert.equal(head.status, 200, `${d} is stored`);
    }
  });

  it('pulls it into a fresh store with the same digest; wrong credentials fail', async () => {
    const bad = await podman('b', ['pull', '--tls-verify=false', '--creds', 'bob:wrong-password', `${host}/pm/img:1`]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /unauthorized|authentication required|401/i, bad.stderr);
    const anon = await podman('b', ['pull', '--tls-verify=false', `${host}/pm/img:1`]);
    assert.notEqual(anon.code, 0, 'a private repository needs credentials');

    await ok('b', ['pull', '--tls-verify=false', '--creds', BOB, `${host}/pm/img:1`]);
    const digest = (await ok('b', ['image', 'inspect', '--format', '{{.Digest}}', `${host}/pm/img:1`])).stdout.trim();
    assert.equal(digest, pushed);
  });

  it('pushes a new tag to the same repository', async () => {
    await ok('b', ['tag', `${host}/pm/img:1`, `${host}/pm/img:2`]);
    const denied = await podman('b', ['push', '--tls-verify=false', '--creds', BOB, `${host}/pm/img:2`]);
    assert.notEqual(denied.code, 0, 'read is not write');
    const r = await ok('b', ['push', '--tls-verify=false', '--creds', ALICE, '--log-level', 'debug', `${host}/pm/img:2`]);
    const res = await s.fetch('/v2/pm/img/tags/list');
    assert.deepEqual(((await res.json()) as { tags: string[] }).tags.sort(), ['1', '2']);
    // The blobs were all there: no upload was started.
    assert.doesNotMatch(r.stderr, /POST [^\s"]*\/v2\/pm\/img\/blobs\/uploads/, 'no blob upload to the same repository');
  });

  it('pushes to a new name with a cross-repository mount, and Granary links the blobs', async () => {
    const since = ((await s.api<{ next: number }>('GET', '/events?limit=1000')).body).next;
    const r = await ok('b', ['push', '--tls-verify=false', '--creds', ALICE, '--log-level', 'debug', `${host}/pm/img:1`, `docker://${host}/pm/fresh:1`]);
    const mounts = [...r.stderr.matchAll(/POST [^\s"]*\/v2\/pm\/fresh\/blobs\/uploads\/\?[^\s"]*mount=(sha256(?:%3A|:)[a-f0-9]{64})/g)].map((m) =>
      decodeURIComponent(m[1]),
    );
    const m = await manifestOf('pm/img', '1');
    const blobs = [m.config.digest, ...m.layers.map((l) => l.digest)];
    assert.ok(mounts.length > 0, `podman tried a cross-repository mount:\n${r.stderr.split('\n').filter((l) => /blobs\/uploads|mount/.test(l)).join('\n')}`);
    for (const d of mounts) assert.ok(blobs.includes(d), `${d} is a blob of the source image`);
    assert.equal(r.stderr.split('... mount OK').length - 1, mounts.length, 'every mount succeeded');
    for (const d of mounts) {
      assert.ok(!r.stderr.includes(`?digest=${encodeURIComponent(d)}`) && !r.stderr.includes(`?digest=${d}`), `${d} was mounted, not uploaded`);
    }

    assert.equal(await manifestDigest('pm/fresh', '1'), pushed, 'same manifest under the new name');
    for (const d of blobs) {
      const head = await s.fetch(`/v2/pm/fresh/blobs/${d}`, { method: 'HEAD' });
      assert.equal(head.status, 200, `${d} is linked into pm/fresh`);
    }
    // The event log shows the blobs linked into the new name (the replication feed sees mounts too).
    const events = (await s.api<{ events: { kind: string; repo: string | null; path: string | null; digest: string | null; data: unknown }[] }>('GET', `/events?since=${since}&repository=pm&limit=1000`)).body.events;
    for (const d of mounts) {
      const linked = events.find((e) => e.digest === d && e.repo === 'pm' && (e.path ?? '').startsWith('fresh/'));
      assert.ok(linked, `an event links ${d} into pm/fresh: ${JSON.stringify(events, null, 1)}`);
    }
  });

  it('podman login stores credentials that push and pull then use', async () => {
    const bad = await podman('c', ['login', '--tls-verify=false', '--username', 'alice', '--password', 'wrong-password', host]);
    assert.notEqual(bad.code, 0);
    await ok('c', ['login', '--tls-verify=false', '--username', 'alice', '--password', ALICE.split(':')[1], host]);
    await ok('c', ['pull', '--tls-verify=false', `${host}/pm/img:1`]);
    await ok('c', ['tag', `${host}/pm/img:1`, `${host}/pm/img:3`]);
    await ok('c', ['push', '--tls-verify=false', `${host}/pm/img:3`]);
    assert.equal(await manifestDigest('pm/img', '3'), pushed);
    await ok('c', ['logout', host]);
  });
});
