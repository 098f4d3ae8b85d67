/**
 * `granary mirror-config` output used by the real clients: podman with the printed registries.conf pulls
 * `docker.io/library/app:1` through the Granary proxy (the proxy's upstream is a second Granary standing in for
 * Docker Hub, offline), and containerd (its own daemon, own root and socket) with the printed hosts.toml pulls
 * the same name through `?ns=docker.io` mirror mode. Skips, naming the binary, when a client is missing.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, startServer, type TestServer } from '../helpers/server.ts';
import { runGranary } from '../helpers/cli.ts';
import { pushImage, type PushedImage } from '../repos/proxy/helpers.ts';
import { missingClient } from './oci-layout.ts';
import { runTool } from './run-tool.ts';

let work: string;
let up: TestServer;
let px: TestServer;
let img: PushedImage;

/** Each client's snippet, printed once by the real CLI (each run loads the whole CLI: not cheap on 2 cores). */
const printed = new Map<string, string>();
async function mirrorConfig(client: string): Promise<string> {
  if (!printed.has(client)) {
    const r = await runGranary(['mirror-config', client, '--url', px.url, '--token', ADMIN_TOKEN], { cwd: work });
    assert.equal(r.code, 0, r.stderr);
    printed.set(client, r.stdout);
  }
  return printed.get(client)!;
}

describe('granary mirror-config with real clients', { timeout: 300_000 }, () => {
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'granary-mirror-'));
    up = await startServer();
    await up.services.repos.create({ name: 'library', format: 'oci', anonymousRead: true }, 'test');
    // A real image layer (a gzip'd tar), so container runtimes can unpack it.
    const { tarArchive } = await import('./oci-layout.ts');
    const { gzipSync } = await import('node:zlib');
    const tar = tarArchive([{ path: 'hello.txt', type: 'file', content: 'hi from the mirror\n' }]);
    const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
    img = await pushImage(up.url, `Bearer ${ADMIN_TOKEN}`, 'library/app', '1', [gzipSync(tar)], undefined, [diffId]);
    px = await startServer();
    await px.services.repos.create(
      { name: 'hub', format: 'oci', kind: 'proxy', anonymousRead: true, upstream: up.url, options: { proxy: { hosts: ['docker.io'], retries: 0 } } },
      'test',
    );
  });
  after(async () => {
    await px?.close();
    await up?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('prints a containerd hosts.toml, a docker daemon.json and podman registries.conf for the proxies', async () => {
    const origin = new URL(px.url).origin;
    const c = await mirrorConfig('containerd');
    assert.match(c, /# \/etc\/containerd\/certs\.d\/docker\.io\/hosts\.toml/);
    assert.ok(c.includes(`[host."${origin}"]`), c);
    const d = await mirrorConfig('docker');
    assert.deepEqual(JSON.parse(d.slice(d.indexOf('{'))), { 'registry-mirrors': [origin], 'insecure-registries': [new URL(px.url).host] });
    assert.match(d, /oci\.defaultRepository.*"hub"/);
    const p = await mirrorConfig('podman');
    assert.ok(p.includes(`location = "${new URL(px.url).host}/hub"`), p);
  });

  it('podman pulls docker.io/library/app:1 through the printed registries.conf', { skip: missingClient('podman') }, async () => {
    const conf = join(work, 'registries.conf');
    await writeFile(conf, await mirrorConfig('podman'));
    const root = join(work, 'podman');
    const r = await runTool(
      'podman',
      ['--storage-driver', 'vfs', '--root', join(root, 'root'), '--runroot', join(root, 'run'), '--tmpdir', join(root, 'tmp'), '--events-backend', 'none', '--cgroup-manager', 'cgroupfs', 'pull', 'docker.io/library/app:1'],
      { authFile: join(work, 'podman-auth.json'), env: { CONTAINERS_REGISTRIES_CONF: conf } },
    );
    assert.equal(r.code, 0, r.stderr);
    const hub = (await px.services.repos.get('hub'))!;
    const { getTag } = await import('../../src/meta/tags.ts');
    assert.equal((await getTag(px.services.meta.db, hub.id, 'library/app', '1'))?.target, img.manifest, 'pulled through the proxy');
  });

  it('containerd pulls docker.io/library/app:1 through the printed hosts.toml (?ns= mirror mode)', { skip: missingClient('containerd', 'ctr') }, async () => {
    const dir = join(work, 'containerd');
    const certs = join(dir, 'certs.d');
    const out = await mirrorConfig('containerd');
    // Split the printed snippet into its files (each starts with a `# /etc/containerd/certs.d/<host>/hosts.toml` line).
    for (const part of out.split(/\n(?=# \/etc\/containerd\/certs\.d\/)/).slice(1)) {
      const host = /certs\.d\/([^/]+)\/hosts\.toml/.exec(part)![1];
      await mkdir(join(certs, host), { recursive: true });
      await writeFile(join(certs, host, 'hosts.toml'), part);
    }
    assert.ok(existsSync(join(certs, 'docker.io', 'hosts.toml')));
    const sock = join(dir, 'containerd.sock');
    await writeFile(join(dir, 'config.toml'), 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n');
    const daemon: ChildProcess = spawn('containerd', ['--config', join(dir, 'config.toml'), '--root', join(dir, 'root'), '--state', join(dir, 'state'), '--address', sock], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 100));
      assert.ok(existsSync(sock), 'containerd started');
      const r = await runTool('ctr', ['--address', sock, 'images', 'pull', '--hosts-dir', certs, '--plain-http', 'docker.io/library/app:1'], { authFile: join(dir, 'auth.json') });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const hub = (await px.services.repos.get('hub'))!;
      const { getAsset } = await import('../../src/meta/assets.ts');
      assert.ok(await getAsset(px.services.meta.db, hub.id, `library/app/_blobs/${img.layers[0]}`), 'the layer came through the proxy');
    } finally {
      daemon.kill('SIGTERM');
      if (daemon.exitCode === null) await once(daemon, 'exit');
    }
  });
});
