/**
 * Maven proxy repositories over the shared proxy machinery, against a static upstream with no checksum files
 * (like Debian's /usr/share/maven-repo): files fetched once and then served from the cache (also with the
 * upstream gone), checksums computed by Granary, upstream maven-metadata.xml merged in a group with a hosted
 * member, proxies read-only.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../../helpers/server.ts';
import { startStaticServer, type StaticServer } from './static-server.ts';
import { createRepo, deployFile, getMetadata, getText, hash } from './support.ts';

let s: TestServer;
let up: StaticServer;
let dir: string;
const A = 'org/up/lib';
const jar = Buffer.from('upstream jar '.repeat(1000));

async function put(rel: string, data: string | Buffer): Promise<void> {
  await mkdir(dirname(join(dir, rel)), { recursive: true });
  await writeFile(join(dir, rel), data);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'granary-maven-up-'));
  await put(`${A}/1.0/lib-1.0.jar`, jar);
  await put(`${A}/1.0/lib-1.0.pom`, '<project/>');
  await put(
    `${A}/maven-metadata.xml`,
    '<metadata><groupId>org.up</groupId><artifactId>lib</artifactId><versioning><latest>1.0</latest><release>1.0</release><versions><version>1.0</version></versions><lastUpdated>20200101000000</lastUpdated></versioning></metadata>',
  );
  await put(`${A}/1.1/lib-1.1.jar`, 'good bytes');
  await put(`${A}/1.1/lib-1.1.jar.sha1`, `${hash('sha1', 'good bytes')}  lib-1.1.jar\n`);
  await put(`${A}/1.2/lib-1.2.jar`, 'tampered bytes');
  await put(`${A}/1.2/lib-1.2.jar.sha1`, hash('sha1', 'original bytes'));
  up = await startStaticServer(dir);
  s = await startServer();
  await createRepo(s, { name: 'central', kind: 'proxy', upstream: up.url, options: { proxy: { metadataTtlSeconds: 60 } } });
  await createRepo(s, { name: 'local' });
  await createRepo(s, { name: 'public', kind: 'group', members: ['local', 'central'], writeMember: 'local' });
});
after(async () => {
  await s.close();
  await up.close();
  await rm(dir, { recursive: true, force: true });
});

describe('maven proxy', () => {
  it('fetches a file once, computes its checksums, and serves it from the cache', async () => {
    const first = await s.fetch(`/maven/public/${A}/1.0/lib-1.0.jar`);
    assert.equal(first.status, 200);
    assert.deepEqual(Buffer.from(await first.arrayBuffer()), jar);
    for (const algo of ['sha1', 'md5', 'sha256', 'sha512']) {
      assert.equal((await getText(s, `/maven/public/${A}/1.0/lib-1.0.jar.${algo}`)).body, hash(algo, jar), algo);
    }
    const again = await s.fetch(`/maven/central/${A}/1.0/lib-1.0.jar`);
    assert.deepEqual(Buffer.from(await again.arrayBuffer()), jar);
    assert.equal(again.headers.get('x-checksum-sha1'), hash('sha1', jar));
    assert.equal(up.requests.filter((r) => r === `GET /${A}/1.0/lib-1.0.jar`).length, 1);
    // The checksums are ours: the upstream was asked once for a .sha1 to compare with (it has none), never again.
    assert.deepEqual(up.requests.filter((r) => /\.(sha1|md5|sha256|sha512)$/.test(r)), [`GET /${A}/1.0/lib-1.0.jar.sha1`]);
    assert.equal((await s.fetch(`/maven/central/${A}/9.9/lib-9.9.jar`)).status, 404);
  });

  it("checks proxied files against the upstream's .sha1 when it has one", async () => {
    assert.equal((await getText(s, `/maven/public/${A}/1.1/lib-1.1.jar.sha1`)).body, hash('sha1', 'good bytes'));
    const bad = await s.fetch(`/maven/public/${A}/1.2/lib-1.2.jar.sha1`);
    assert.equal(bad.status, 502);
    assert.match(await bad.text(), /does not match the bytes it served/);
  });

  it('merges upstream metadata with a hosted member in a group', async () => {
    await deployFile(s, 'local', `${A}/2.0-SNAPSHOT/lib-2.0-20261123.120000-1.jar`, 'local snapshot');
    await deployFile(s, 'local', `${A}/1.5/lib-1.5.jar`, 'local release');
    const m = await getMetadata(s, `/maven/public/${A}/maven-metadata.xml`);
    assert.deepEqual(m.versioning.versions.version, ['1.0', '1.5', '2.0-SNAPSHOT']);
    assert.equal(m.versioning.release, '1.5');
    assert.equal(m.versioning.latest, '2.0-SNAPSHOT');
  });

  it('is read-only, and keeps serving cached files when the upstream is gone', async () => {
    const res = await s.fetch(`/maven/central/${A}/3.0/lib-3.0.jar`, { method: 'PUT', body: 'x' });
    assert.equal(res.status, 405);
    await up.close();
    assert.deepEqual(Buffer.from(await (await s.fetch(`/maven/public/${A}/1.0/lib-1.0.jar`)).arrayBuffer()), jar);
    assert.equal((await getText(s, `/maven/public/${A}/1.0/lib-1.0.jar.sha1`)).body, hash('sha1', jar));
  });
});
