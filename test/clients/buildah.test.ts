/**
 * buildah (vfs storage in temp dirs, as root, plain HTTP) against a real Granary with Docker token auth:
 * `from scratch` + `copy` + `config` + `commit`, then `push` as an OCI manifest and as Docker v2 schema 2,
 * each checked in Granary (media type, digest, blobs), and pulled back into a fresh store.
 * Skips, naming the binary, when buildah is not installed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { missingClient } from './oci-layout.ts';
import { runTool, type ToolRun } from './run-tool.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const ALICE = 'alice:alice-password-1';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const V2S2 = 'application/vnd.docker.distribution.manifest.v2+json';

let s: TestServer;
let work: string;
let host: string;

type Ran = ToolRun;

/** buildah with its own vfs store (`store` names it), run dir and auth file. */
function buildah(store: string, args: string[]): Promise<Ran> {
  const global = ['--storage-driver', 'vfs', '--root', join(work, store, 'root'), '--runroot', join(work, store, 'run')];
  return runTool('buildah', [...global, ...args], {
    authFile: join(work, `${store}-auth.json`),
    env: { TMPDIR: work, BUILDAH_ISOLATION: 'chroot' },
  });
}

async function ok(store: string, args: string[]): Promise<string> {
  const r = await buildah(store, args);
  assert.equal(r.code, 0, `buildah ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** GETs a manifest as `accept`, checks it is that type with that digest and that its blobs are stored. */
async function checkManifest(name: string, ref: string, accept: string, digest: string): Promise<{ annotations?: Record<string, string>; mediaType?: string }> {
  const res = await s.fetch(`/v2/${name}/manifests/${ref}`, { headers: { accept } });
  const bytes = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200, bytes.toString());
  assert.equal(res.headers.get('content-type'), accept);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  assert.equal(sha256(bytes), digest, 'the bytes pushed are the bytes served');
  const m = JSON.parse(bytes.toString()) as { config: { digest: string }; layers: { digest: string; mediaType: string }[]; mediaType?: string; annotations?: Record<string, string> };
  assert.equal(m.layers.length, 1);
  for (const d of [m.config.digest, m.layers[0].digest]) {
    const head = await s.fetch(`/v2/${name}/blobs/${d}`, { method: 'HEAD' });
    assert.equal(head.status, 200, `${d} is stored`);
  }
  return m;
}

describe('buildah', { skip: missingClient('buildah'), timeout: 600_000 }, () => {
  const image = () => `${host}/bd/hello`;
  let ociDigest: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'granary-buildah-'));
    s = await startServer({ config: { auth: { failedLoginLimit: 1000 } } });
    host = new URL(s.url).host;
    await s.services.repos.create({ name: 'bd', format: 'oci', anonymousRead: false }, 'test');
    await s.services.accounts.addUser({ name: 'alice', password: ALICE.split(':')[1] }, 'test');
    await s.services.accounts.grant({ user: 'alice', repository: 'bd', role: 'write' }, 'test');
  });
  after(async () => {
    await s?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('from scratch, copy, commit, push (OCI)', async () => {
    const ctr = (await ok('a', ['from', 'scratch'])).trim();
    assert.ok(ctr, 'a working container');
    const file = join(work, 'hello.txt');
    await writeFile(file, 'hello from buildah\n');
    await ok('a', ['copy', ctr, file, '/hello.txt']);
    await ok('a', ['config', '--cmd', '/hello', '--label', 'org.example.test=granary', ctr]);
    await ok('a', ['commit', ctr, `${image()}:1`]);

    const anon = await buildah('a', ['push', '--tls-verify=false', `${image()}:1`]);
    assert.notEqual(anon.code, 0, 'pushing needs credentials');
    assert.match(anon.stderr, /unauthorized|authentication required|401/i, anon.stderr);

    const digestFile = join(work, 'oci.digest');
    await ok('a', ['push', '--tls-verify=false', '--creds', ALICE, '--digestfile', digestFile, `${image()}:1`]);
    ociDigest = (await readFile(digestFile, 'utf8')).trim();
    const m = await checkManifest('bd/hello', '1', OCI_MANIFEST, ociDigest);
    assert.equal(m.mediaType, OCI_MANIFEST);
  });

  it('push --format v2s2', async () => {
    const digestFile = join(work, 'v2s2.digest');
    await ok('a', ['push', '--tls-verify=false', '--creds', ALICE, '--format', 'v2s2', '--digestfile', digestFile, `${image()}:1`, `docker://${image()}:v2s2`]);
    const digest = (await readFile(digestFile, 'utf8')).trim();
    assert.notEqual(digest, ociDigest);
    const m = await checkManifest('bd/hello', 'v2s2', V2S2, digest);
    assert.equal(m.mediaType, V2S2);
    const tags = await s.fetch('/v2/bd/hello/tags/list');
    assert.deepEqual(((await tags.json()) as { tags: string[] }).tags.sort(), ['1', 'v2s2']);
  });

  it('pulls both back into a fresh store', async () => {
    await ok('b', ['pull', '--tls-verify=false', '--creds', ALICE, `${image()}:1`]);
    await ok('b', ['pull', '--tls-verify=false', '--creds', ALICE, `${image()}:v2s2`]);
    const listed = JSON.parse(await ok('b', ['images', '--json'])) as { names?: string[]; digest?: string }[];
    const byName = (n: string) => listed.find((i) => i.names?.includes(n));
    assert.equal(byName(`${image()}:1`)?.digest, ociDigest);
    assert.ok(byName(`${image()}:v2s2`), JSON.stringify(listed));
    const ctr = (await ok('b', ['from', '--pull-never', `${image()}:1`])).trim();
    const cfg = JSON.parse(await ok('b', ['inspect', '--type', 'container', ctr])) as { OCIv1: { config: { Cmd: string[]; Labels: Record<string, string> } } };
    assert.deepEqual(cfg.OCIv1.config.Cmd, ['/hello']);
    assert.equal(cfg.OCIv1.config.Labels['org.example.test'], 'granary');
  });
});
