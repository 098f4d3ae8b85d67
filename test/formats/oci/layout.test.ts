/**
 * Checks test/clients/oci-layout.ts: the tar archives are valid ustar, the layout is what image-layout.md says,
 * the manifests pass our own parser, and — when the binaries are on PATH — skopeo, umoci and Debian's
 * docker-registry (CNCF Distribution 2.8) accept the output. Client tests skip with the missing binary named.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { hasClient, missingClient, tarArchive, writeOciLayout } from '../../clients/oci-layout.ts';
import { parseManifest, requiredBlobs, requiredManifests } from '../../../src/formats/oci/manifest.ts';
import { MT } from '../../../src/formats/oci/media-types.ts';

const run = promisify(execFile);
const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'granary-oci-layout-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function readTar(tar: Buffer): { name: string; type: string; size: number; mode: number; content: Buffer }[] {
  const out = [];
  let off = 0;
  for (;;) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const field = (a: number, l: number) => h.subarray(a, a + l).toString('utf8').replace(/\0.*$/s, '');
    const stored = parseInt(field(148, 8).trim(), 8);
    const copy = Buffer.from(h);
    copy.fill(0x20, 148, 156);
    assert.equal(copy.reduce((s, b) => s + b, 0), stored, 'header checksum');
    assert.equal(field(257, 6), 'ustar');
    const size = parseInt(field(124, 12), 8);
    const prefix = field(345, 155);
    const name = prefix ? `${prefix}/${field(0, 100)}` : field(0, 100);
    out.push({ name, type: field(156, 1), size, mode: parseInt(field(100, 8), 8), content: tar.subarray(off + 512, off + 512 + size) });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  assert.ok(tar.subarray(off, off + 1024).every((b) => b === 0), 'two zero blocks');
  assert.equal(tar.length % 10240, 0, 'record-padded');
  return out;
}

describe('tarArchive', () => {
  test('writes ustar headers, padding and end blocks', () => {
    const long = `${'d'.repeat(120)}/${'f'.repeat(90)}.txt`;
    const tar = tarArchive([
      { path: 'etc', type: 'dir' },
      { path: 'etc/a.txt', type: 'file', content: 'hello\n' },
      { path: 'etc/empty', type: 'file' },
      { path: 'bin/x', type: 'file', content: Buffer.alloc(513, 1), mode: 0o755 },
      { path: long, type: 'file', content: 'long' },
    ]);
    const entries = readTar(tar);
    assert.deepEqual(
      entries.map((e) => [e.name, e.type, e.size, e.mode]),
      [
        ['etc/', '5', 0, 0o755],
        ['etc/a.txt', '0', 6, 0o644],
        ['etc/empty', '0', 0, 0o644],
        ['bin/x', '0', 513, 0o755],
        [long, '0', 4, 0o644],
      ],
    );
    assert.equal(entries[1].content.toString(), 'hello\n');
  });

  test('GNU tar reads it', { skip: missingClient('tar') }, async () => {
    const file = join(root, 't.tar');
    await writeFile(file, tarArchive([{ path: 'x', type: 'dir' }, { path: 'x/y.txt', type: 'file', content: 'y' }]));
    const { stdout, stderr } = await run('tar', ['-tvf', file]);
    assert.equal(stderr, '');
    assert.match(stdout, /^drwxr-xr-x root\/root +0 2024-01-01 00:00 x\/\n-rw-r--r-- root\/root +1 2024-01-01 00:00 x\/y\.txt\n$/);
  });

  test('refuses paths too long for ustar', () => {
    assert.throws(() => tarArchive([{ path: 'x'.repeat(300), type: 'file' }]), /too long/);
  });
});

describe('writeOciLayout', () => {
  test('single image: oci-layout, index.json, blobs, digests', async () => {
    const dir = join(root, 'single');
    const l = await writeOciLayout(dir, { tag: 'v1', layers: 3 });
    assert.equal(l.ref, `oci:${dir}:v1`);
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    assert.equal(index.schemaVersion, 2);
    assert.deepEqual(index.manifests, [
      { mediaType: MT.OCI_MANIFEST, digest: l.top.digest, size: l.top.size, annotations: { 'org.opencontainers.image.ref.name': 'v1' } },
    ]);
    for (const d of l.blobs) {
      const bytes = await readFile(join(dir, 'blobs', 'sha256', d.slice(7)));
      assert.equal(sha256(bytes), d, 'blob file content matches its name');
    }
    const img = l.images[0];
    const manifestBytes = await readFile(join(dir, 'blobs', 'sha256', img.manifest.digest.slice(7)));
    const m = parseManifest(manifestBytes, MT.OCI_MANIFEST);
    assert.equal(m.layers.length, 3);
    assert.deepEqual(requiredBlobs(m).map((d) => d.digest), [img.config.digest, ...img.layers.map((x) => x.digest)]);
    const config = JSON.parse(await readFile(join(dir, 'blobs', 'sha256', img.config.digest.slice(7)), 'utf8'));
    assert.deepEqual(config.rootfs, { type: 'layers', diff_ids: img.layers.map((x) => x.diffId) });
    assert.equal(config.architecture, 'amd64');
    assert.equal(config.os, 'linux');
    for (const layer of img.layers) {
      const tar = gunzipSync(await readFile(join(dir, 'blobs', 'sha256', layer.digest.slice(7))));
      assert.equal(sha256(tar), layer.diffId);
      assert.ok(readTar(tar).some((e) => e.name.startsWith('etc/granary/layer-')));
    }
  });

  test('deterministic, seed-dependent', async () => {
    const a = await writeOciLayout(join(root, 'det-a'));
    const b = await writeOciLayout(join(root, 'det-b'));
    const c = await writeOciLayout(join(root, 'det-c'), { seed: 'other' });
    assert.equal(a.top.digest, b.top.digest);
    assert.notEqual(a.top.digest, c.top.digest);
  });

  test('multi-arch index and a second tag in the same layout', async () => {
    const dir = join(root, 'multi');
    const single = await writeOciLayout(dir, { tag: 'single' });
    const multi = await writeOciLayout(dir, { tag: 'multi', multiArch: true, extraBytes: 70_000 });
    await writeOciLayout(dir, { tag: 'single' }); // rewriting a tag replaces its entry
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    assert.deepEqual(
      index.manifests.map((m: { annotations: Record<string, string>; digest: string }) => [m.annotations['org.opencontainers.image.ref.name'], m.digest]),
      [
        ['multi', multi.top.digest],
        ['single', single.top.digest],
      ],
    );
    assert.equal(multi.top.mediaType, MT.OCI_INDEX);
    assert.equal(multi.images.length, 2);
    const idx = parseManifest(await readFile(join(dir, 'blobs', 'sha256', multi.top.digest.slice(7))), MT.OCI_INDEX);
    assert.deepEqual(
      requiredManifests(idx).map((d) => [d.digest, d.platform]),
      multi.images.map((i) => [i.manifest.digest, i.platform]),
    );
    assert.notEqual(multi.images[0].layers[0].digest, multi.images[1].layers[0].digest);
    assert.ok(multi.images[0].layers[0].size > 70_000, 'extra bytes are incompressible');
  });
});

describe('real clients accept the layout', () => {
  test('skopeo copy oci → oci keeps every digest', { skip: missingClient('skopeo') }, async () => {
    const src = join(root, 'sk-src');
    const single = await writeOciLayout(src, { tag: 'single' });
    const multi = await writeOciLayout(src, { tag: 'multi', multiArch: true });
    const dst = join(root, 'sk-dst');
    await run('skopeo', ['copy', single.ref, `oci:${dst}:single`]);
    await run('skopeo', ['copy', '--all', multi.ref, `oci:${dst}:multi`]);
    const index = JSON.parse(await readFile(join(dst, 'index.json'), 'utf8'));
    assert.deepEqual(index.manifests.map((m: { digest: string }) => m.digest).sort(), [single.top.digest, multi.top.digest].sort());
    const { stdout } = await run('skopeo', ['inspect', `oci:${dst}:single`]);
    assert.deepEqual(JSON.parse(stdout).Layers, single.images[0].layers.map((l) => l.digest));
  });

  test('umoci reads and unpacks it', { skip: missingClient('umoci') }, async () => {
    const dir = join(root, 'umoci');
    const l = await writeOciLayout(dir, { tag: 'img', layers: 2 });
    const { stdout: tags } = await run('umoci', ['ls', '--layout', dir]);
    assert.equal(tags.trim(), 'img');
    const { stdout } = await run('umoci', ['stat', '--image', `${dir}:img`]);
    for (const layer of l.images[0].layers) assert.ok(stdout.includes(layer.digest), stdout);
    if (process.getuid?.() === 0) {
      const bundle = join(root, 'bundle');
      await run('umoci', ['unpack', '--image', `${dir}:img`, bundle]);
      assert.equal(await readFile(join(bundle, 'rootfs', 'etc', 'granary', 'layer-1.txt'), 'utf8'), 'granary layer 1 for linux/amd64\n');
    }
  });

  test('push to and pull from CNCF Distribution (docker-registry)', { skip: missingClient('skopeo', 'docker-registry'), timeout: 120_000 }, async () => {
    const port = await freePort();
    const conf = join(root, 'reg.yml');
    await writeFile(
      conf,
      `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(root, 'reg-data')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n`,
    );
    const server = spawn('docker-registry', ['serve', conf], { stdio: 'ignore' });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/v2/`);
      const src = join(root, 'reg-src');
      const single = await writeOciLayout(src, { tag: 'single', extraBytes: 200_000 });
      const multi = await writeOciLayout(src, { tag: 'multi', multiArch: true });
      const repo = `docker://127.0.0.1:${port}/granary/test`;
      await run('skopeo', ['copy', '--dest-tls-verify=false', single.ref, `${repo}:single`]);
      await run('skopeo', ['copy', '--all', '--dest-tls-verify=false', multi.ref, `${repo}:multi`]);
      const { stdout: raw } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `${repo}:multi`]);
      assert.equal(sha256(Buffer.from(raw)), multi.top.digest, 'the index bytes are kept exactly');
      const { stdout: tags } = await run('skopeo', ['list-tags', '--tls-verify=false', repo]);
      assert.deepEqual(JSON.parse(tags).Tags.sort(), ['multi', 'single']);
      const back = join(root, 'reg-back');
      await run('skopeo', ['copy', '--all', '--src-tls-verify=false', `${repo}:multi`, `oci:${back}:multi`]);
      const index = JSON.parse(await readFile(join(back, 'index.json'), 'utf8'));
      assert.equal(index.manifests[0].digest, multi.top.digest);
      // What Distribution answers without an Accept header for an OCI manifest (see negotiate() in manifest.ts).
      const res = await fetch(`http://127.0.0.1:${port}/v2/granary/test/manifests/single`);
      assert.equal(res.status, 404);
      const ok = await fetch(`http://127.0.0.1:${port}/v2/granary/test/manifests/single`, { headers: { accept: MT.OCI_MANIFEST } });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('docker-content-digest'), single.top.digest);
    } finally {
      server.kill('SIGTERM');
    }
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForHttp(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not come up`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('hasClient', () => {
  assert.equal(hasClient('sh'), true);
  assert.equal(hasClient('definitely-not-a-granary-client'), false);
  assert.equal(missingClient('sh'), false);
  assert.match(String(missingClient('sh', 'definitely-not-a-granary-client')), /not on PATH: definitely-not-a-granary-client/);
});
