/**
 * containerd 1.6 (Debian's `containerd` + `ctr`) against a real Granary: a private containerd daemon (own root,
 * state and socket in a temp dir) pulls a multi-arch image skopeo pushed, through Docker token auth — containerd
 * fetches tokens with the OAuth2 POST form, unlike skopeo/podman's GET — unpacks it, and pushes it to a new
 * name. A read-only user cannot push and leaves nothing behind. Skips, naming the reason, without the
 * binaries or root (containerd needs root for its snapshotter).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { missingClient, writeOciLayout, type OciLayout } from './oci-layout.ts';
import { runTool, type ToolRun } from './run-tool.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const ALICE = 'alice:alice-password-1';
const BOB = 'bob:bob-password-123';
const OCI_ACCEPT = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json';

const skip = missingClient('containerd', 'ctr', 'skopeo') || (process.getuid?.() !== 0 ? 'containerd needs root (its snapshotter mounts)' : false);

let s: TestServer;
let work: string;
let host: string;
let daemon: ChildProcess | undefined;
let daemonLog = '';
let layout: OciLayout;

const socket = () => join(work, 'containerd.sock');

/** `ctr` against the private daemon, in its own namespace (never the host's images). */
function ctr(args: string[]): Promise<ToolRun> {
  return runTool('ctr', ['--address', socket(), '--namespace', 'granary-test', ...args], { authFile: join(work, 'auth.json') });
}

async function ok(args: string[]): Promise<ToolRun> {
  const r = await ctr(args);
  assert.equal(r.code, 0, `ctr ${args.join(' ')} failed:\n${r.stderr}${r.stdout}\ncontainerd log tail:\n${daemonLog.slice(-2000)}`);
  return r;
}

async function startContainerd(): Promise<void> {
  const config = join(work, 'config.toml');
  // The CRI plug-in is not needed and would look for CNI; the daemon's own paths keep it off the host's state.
  await writeFile(
    config,
    [
      'version = 2',
      `root = "${join(work, 'root')}"`,
      `state = "${join(work, 'state')}"`,
      `disabled_plugins = ["io.containerd.grpc.v1.cri"]`,
      '[grpc]',
      `  address = "${socket()}"`,
      '',
    ].join('\n'),
  );
  daemon = spawn('containerd', ['--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  daemon.stderr!.setEncoding('utf8').on('data', (d: string) => (daemonLog = (daemonLog + d).slice(-20_000)));
  for (let i = 0; i < 100; i++) {
    if (daemon.exitCode !== null) break;
    if (existsSync(socket()) && (await ctr(['version'])).code === 0) return;
    await sleep(100);
  }
  throw new Error(`containerd did not start:\n${daemonLog.slice(-2000)}`);
}

async function manifestDigest(name: string, ref: string): Promise<string | null> {
  const res = await s.fetch(`/v2/${name}/manifests/${ref}`, { method: 'HEAD', headers: { accept: OCI_ACCEPT } });
  return res.status === 200 ? res.headers.get('docker-content-digest') : null;
}

/** Requests Granary answered for a route and method, from its Prometheus metrics. */
async function served(method: string, route: string): Promise<number> {
  const text = await (await s.fetch('/metrics')).text();
  let n = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('granary_http_requests_total{') && line.includes(`method="${method}"`) && line.includes(`route="${route}"`)) {
      n += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return n;
}

describe('containerd (ctr)', { skip, timeout: 300_000 }, () => {
  before(async () => {
    work = join(tmpdir(), `granary-containerd-${randomBytes(6).toString('hex')}`);
    await mkdir(work);
    await startContainerd();
    s = await startServer({ config: { auth: { failedLoginLimit: 1000 } } });
    host = new URL(s.url).host;
    const { repos, accounts } = s.services;
    await repos.create({ name: 'ctd', format: 'oci', anonymousRead: false }, 'test');
    await accounts.addUser({ name: 'alice', password: ALICE.split(':')[1] }, 'test');
    await accounts.grant({ user: 'alice', repository: 'ctd', role: 'write' }, 'test');
    await accounts.addUser({ name: 'bob', password: BOB.split(':')[1] }, 'test');
    await accounts.grant({ user: 'bob', repository: 'ctd', role: 'read' }, 'test');
    layout = await writeOciLayout(join(work, 'layout'), { tag: 'v1', layers: 2, multiArch: true, seed: 'containerd' });
    const pushed = await runTool('skopeo', ['copy', '--all', '--dest-tls-verify=false', '--dest-creds', ALICE, layout.ref, `docker://${host}/ctd/app:1`], {
      authFile: join(work, 'auth.json'),
    });
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal(await manifestDigest('ctd/app', '1'), layout.top.digest);
  });
  after(async () => {
    await s?.close();
    if (daemon && daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await Promise.race([new Promise((r) => daemon!.once('exit', r)), sleep(5000)]);
      if (daemon.exitCode === null) daemon.kill('SIGKILL');
    }
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pulls every platform of a multi-arch image with a read-only user, via the OAuth2 POST token form, and unpacks it', async () => {
    const before = await served('POST', '/v2/token');
    await ok(['images', 'pull', '--plain-http', '--all-platforms', '--user', BOB, `${host}/ctd/app:1`]);
    assert.ok((await served('POST', '/v2/token')) > before, 'containerd fetched its token with POST /v2/token');
    const list = (await ok(['images', 'ls'])).stdout;
    const line = list.split('\n').find((l) => l.startsWith(`${host}/ctd/app:1 `));
    assert.ok(line, list);
    assert.ok(line.includes(layout.top.digest), `containerd recorded the digest Granary served: ${line}`);
    // Every blob of every platform is now in containerd's content store, byte-identical (containerd verifies).
    const content = (await ok(['content', 'ls', '--quiet'])).stdout;
    for (const img of layout.images) {
      for (const b of [img.manifest, img.config, ...img.layers]) assert.ok(content.includes(b.digest), `containerd has ${b.digest}`);
    }
    // Unpacked for this machine's platform: a snapshot exists.
    assert.match((await ok(['snapshots', 'ls'])).stdout, /Committed/);
  });

  it('pushes the image to a new name with write rights; the digests survive the round trip', async () => {
    await ok(['images', 'tag', `${host}/ctd/app:1`, `${host}/ctd/copy:2`]);
    await ok(['images', 'push', '--plain-http', '--user', ALICE, `${host}/ctd/copy:2`]);
    assert.equal(await manifestDigest('ctd/copy', '2'), layout.top.digest);
    for (const img of layout.images) {
      assert.equal(await manifestDigest('ctd/copy', img.manifest.digest), img.manifest.digest);
      for (const b of [img.config, ...img.layers]) {
        const head = await s.fetch(`/v2/ctd/copy/blobs/${b.digest}`, { method: 'HEAD' });
        assert.equal(head.status, 200, `blob ${b.digest} reached ctd/copy`);
        assert.equal(Number(head.headers.get('content-length')), b.size);
      }
    }
  });

  it('refuses a push by a read-only user and an anonymous pull of a private repository, storing nothing', async () => {
    await ok(['images', 'tag', `${host}/ctd/app:1`, `${host}/ctd/denied:3`]);
    const push = await ctr(['images', 'push', '--plain-http', '--user', BOB, `${host}/ctd/denied:3`]);
    assert.notEqual(push.code, 0, 'a read-only user pushed');
    assert.match(push.stderr, /401|403|denied|unauthorized|insufficient/i);
    assert.equal(await manifestDigest('ctd/denied', '3'), null);
    const tags = await s.fetch('/v2/ctd/denied/tags/list');
    assert.equal(tags.status, 404, 'no repository name was created by the refused push');

    const anon = await ctr(['images', 'pull', '--plain-http', `${host}/ctd/app:1`]);
    assert.notEqual(anon.code, 0, 'an anonymous pull of a private repository succeeded');
    assert.match(anon.stderr, /401|unauthorized|authorization/i);
  });
});
