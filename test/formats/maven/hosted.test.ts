/**
 * Hosted Maven repositories over real HTTP: deploys the way Maven 3.8 makes them (file, .sha1, .md5, then
 * metadata), server-generated maven-metadata.xml at artifact and SNAPSHOT version level with matching
 * checksums, computed .sha256/.sha512, release immutability, checksum verification, policies and retention.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../../helpers/server.ts';
import { createRepo, deployFile, getMetadata, getText, hash, pom } from './support.ts';

let s: TestServer;
const A = 'com/example/hello';

before(async () => {
  s = await startServer();
  await createRepo(s, { name: 'mixed', options: { snapshotRetention: 2 } });
  await createRepo(s, { name: 'releases', options: { policy: 'release' } });
  await createRepo(s, { name: 'snapshots', options: { policy: 'snapshot' } });
  await createRepo(s, { name: 'loose', options: { allowRedeploy: true } });
});
after(() => s.close());

describe('maven hosted', () => {
  it('deploys a release: files and checksums served, artifact metadata generated', async () => {
    const jar = Buffer.from('PK\x03\x04 not really a jar, but bytes: ' + 'x'.repeat(5000));
    assert.equal(await deployFile(s, 'mixed', `${A}/1.0.0/hello-1.0.0.pom`, pom('com.example', 'hello', '1.0.0')), 201);
    assert.equal(await deployFile(s, 'mixed', `${A}/1.0.0/hello-1.0.0.jar`, jar), 201);
    // Maven uploads its own metadata draft; the server keeps its own view.
    const draft = '<metadata><groupId>com.example</groupId><artifactId>hello</artifactId><versioning><release>9.9</release><versions><version>9.9</version></versions></versioning></metadata>';
    const put = await s.fetch(`/maven/mixed/${A}/maven-metadata.xml`, { method: 'PUT', body: draft });
    assert.equal(put.status, 201);
    const m = await getMetadata(s, `/maven/mixed/${A}/maven-metadata.xml`);
    assert.equal(m.groupId, 'com.example');
    assert.equal(m.artifactId, 'hello');
    assert.deepEqual(m.versioning.versions.version, ['1.0.0']);
    assert.equal(m.versioning.release, '1.0.0');
    assert.equal(m.versioning.latest, '1.0.0');
    assert.match(m.versioning.lastUpdated, /^\d{14}$/);

    const got = await s.fetch(`/maven/mixed/${A}/1.0.0/hello-1.0.0.jar`);
    assert.deepEqual(Buffer.from(await got.arrayBuffer()), jar);
    assert.equal(got.headers.get('x-checksum-sha1'), hash('sha1', jar));
    for (const algo of ['md5', 'sha1', 'sha256', 'sha512']) {
      const c = await getText(s, `/maven/mixed/${A}/1.0.0/hello-1.0.0.jar.${algo}`);
      assert.equal(c.status, 200);
      assert.equal(c.body, hash(algo, jar), algo);
    }
    const head = await s.fetch(`/maven/mixed/${A}/1.0.0/hello-1.0.0.jar`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(jar.length));
  });

  it('deploys two SNAPSHOT builds: version metadata names the newest build per classifier/extension', async () => {
    const v = '1.1-SNAPSHOT';
    const b1 = '1.1-20261123.100000-1';
    const b2 = '1.1-20261123.110000-2';
    await deployFile(s, 'mixed', `${A}/${v}/hello-${b1}.pom`, pom('com.example', 'hello', v));
    await deployFile(s, 'mixed', `${A}/${v}/hello-${b1}.jar`, 'jar build 1');
    const before = await getMetadata(s, `/maven/mixed/${A}/${v}/maven-metadata.xml`);
    assert.equal(before.versioning.snapshot.buildNumber, '1');
    await deployFile(s, 'mixed', `${A}/${v}/hello-${b2}.pom`, pom('com.example', 'hello', v));
    await deployFile(s, 'mixed', `${A}/${v}/hello-${b2}.jar`, 'jar build 2');
    await deployFile(s, 'mixed', `${A}/${v}/hello-${b2}-sources.jar`, 'sources build 2');
    const m = await getMetadata(s, `/maven/mixed/${A}/${v}/maven-metadata.xml`);
    assert.equal(m.version, v);
    assert.equal(m.versioning.snapshot.timestamp, '20261123.110000');
    assert.equal(m.versioning.snapshot.buildNumber, '2');
    assert.equal(m.versioning.lastUpdated, '20261123110000');
    const sv = Object.fromEntries(m.versioning.snapshotVersions.snapshotVersion.map((x: Record<string, string>) => [`${x.classifier ?? ''}:${x.extension}`, x]));
    assert.deepEqual(Object.keys(sv).sort(), [':jar', ':pom', 'sources:jar']);
    for (const x of Object.values(sv) as Record<string, string>[]) {
      assert.equal(x.value, b2);
      assert.equal(x.updated, '20261123110000');
    }
    const art = await getMetadata(s, `/maven/mixed/${A}/maven-metadata.xml`);
    assert.deepEqual(art.versioning.versions.version, ['1.0.0', v]);
    assert.equal(art.versioning.latest, v);
    assert.equal(art.versioning.release, '1.0.0');
    assert.equal((await getText(s, `/maven/mixed/${A}/${v}/hello-${b2}.jar`)).body, 'jar build 2');
  });

  it('refuses to redeploy a release (409, message in the status line), unless the repository allows it', async () => {
    const res = await s.fetch(`/maven/mixed/${A}/1.0.0/hello-1.0.0.jar`, { method: 'PUT', body: 'other bytes' });
    assert.equal(res.status, 409);
    assert.match(res.statusText, /releases cannot be redeployed/);
    assert.match(await res.text(), /allowRedeploy/);
    assert.equal((await getText(s, `/maven/mixed/${A}/1.0.0/hello-1.0.0.jar.sha1`)).body.length, 40);
    // SNAPSHOT files may be replaced.
    assert.equal(await deployFile(s, 'mixed', `${A}/1.1-SNAPSHOT/hello-1.1-20261123.110000-2.jar`, 'jar build 2'), 200);
    assert.equal(await deployFile(s, 'loose', `${A}/1.0/hello-1.0.jar`, 'one'), 201);
    assert.equal(await deployFile(s, 'loose', `${A}/1.0/hello-1.0.jar`, 'two'), 200);
    assert.equal((await getText(s, `/maven/loose/${A}/1.0/hello-1.0.jar`)).body, 'two');
  });

  it('refuses checksums that do not match the stored bytes, and uploads whose checksum header is wrong', async () => {
    await deployFile(s, 'mixed', `${A}/2.0/hello-2.0.jar`, 'two point oh');
    for (const [algo, body] of [['sha1', hash('sha1', 'something else')], ['md5', 'not hex at all'], ['sha256', hash('sha256', 'x')]]) {
      const res = await s.fetch(`/maven/mixed/${A}/2.0/hello-2.0.jar.${algo}`, { method: 'PUT', body });
      assert.equal(res.status, 400, algo);
      await res.arrayBuffer();
    }
    // sha1sum-style "hex  name" is a valid checksum body.
    const ok = await s.fetch(`/maven/mixed/${A}/2.0/hello-2.0.jar.sha1`, { method: 'PUT', body: `${hash('sha1', 'two point oh')}  hello-2.0.jar\n` });
    assert.equal(ok.status, 201);
    const bad = await s.fetch(`/maven/mixed/${A}/2.1/hello-2.1.jar`, { method: 'PUT', body: 'payload', headers: { 'x-checksum-sha1': hash('sha1', 'other') } });
    assert.equal(bad.status, 400);
    assert.equal((await getText(s, `/maven/mixed/${A}/2.1/hello-2.1.jar`)).status, 404);
    const orphan = await s.fetch(`/maven/mixed/${A}/2.2/hello-2.2.jar.sha1`, { method: 'PUT', body: hash('sha1', 'x') });
    assert.equal(orphan.status, 404);
  });

  it('validates uploaded metadata as XML', async () => {
    const res = await s.fetch(`/maven/mixed/${A}/maven-metadata.xml`, { method: 'PUT', body: '<metadata><versioning>' });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /not well-formed/);
  });

  it('keeps only the newest N timestamped builds of a SNAPSHOT (snapshotRetention)', async () => {
    const dir = 'org/demo/ret/3.0-SNAPSHOT';
    for (let b = 1; b <= 4; b++) {
      await deployFile(s, 'mixed', `${dir}/ret-3.0-20261123.12000${b}-${b}.pom`, `pom ${b}`);
      await deployFile(s, 'mixed', `${dir}/ret-3.0-20261123.12000${b}-${b}.jar`, `jar ${b}`);
    }
    const listing = (await getText(s, `/maven/mixed/${dir}/`)).body;
    for (let b = 1; b <= 4; b++) {
      const present = listing.includes(`ret-3.0-20261123.12000${b}-${b}.jar`);
      assert.equal(present, b > 2, `build ${b}`);
      assert.equal((await getText(s, `/maven/mixed/${dir}/ret-3.0-20261123.12000${b}-${b}.pom`)).status, b > 2 ? 200 : 404);
    }
    const m = await getMetadata(s, `/maven/mixed/${dir}/maven-metadata.xml`);
    assert.equal(m.versioning.snapshot.buildNumber, '4');
  });

  it('enforces release-only and snapshot-only policies', async () => {
    assert.equal(await deployFile(s, 'releases', `${A}/1.0/hello-1.0.jar`, 'r'), 201);
    const snap = await s.fetch(`/maven/releases/${A}/1.1-SNAPSHOT/hello-1.1-20261123.100000-1.jar`, { method: 'PUT', body: 's' });
    assert.equal(snap.status, 400);
    assert.match(snap.statusText, /releases only/);
    assert.equal(await deployFile(s, 'snapshots', `${A}/1.1-SNAPSHOT/hello-1.1-20261123.100000-1.jar`, 's'), 201);
    const rel = await s.fetch(`/maven/snapshots/${A}/1.0/hello-1.0.jar`, { method: 'PUT', body: 'r' });
    assert.equal(rel.status, 400);
    assert.match(await rel.text(), /SNAPSHOTs only/);
  });

  it('keeps plugin prefixes from uploaded group-level metadata', async () => {
    const doc = (prefix: string, id: string) => `<metadata><plugins><plugin><name>${id}</name><prefix>${prefix}</prefix><artifactId>${id}</artifactId></plugin></plugins></metadata>`;
    for (const [p, id] of [['hello', 'hello-maven-plugin'], ['other', 'other-maven-plugin']]) {
      const res = await s.fetch('/maven/mixed/org/plugins/maven-metadata.xml', { method: 'PUT', body: doc(p, id) });
      assert.equal(res.status, 201);
    }
    const m = await getMetadata(s, '/maven/mixed/org/plugins/maven-metadata.xml');
    assert.deepEqual(m.plugins.plugin.map((x: { prefix: string }) => x.prefix).sort(), ['hello', 'other']);
  });

  it('deletes a file or a whole version folder; metadata follows', async () => {
    await deployFile(s, 'mixed', 'org/del/thing/1.0/thing-1.0.jar', 'a');
    await deployFile(s, 'mixed', 'org/del/thing/1.0/thing-1.0.pom', 'b');
    await deployFile(s, 'mixed', 'org/del/thing/2.0/thing-2.0.jar', 'c');
    assert.equal((await s.fetch('/maven/mixed/org/del/thing/2.0/thing-2.0.jar', { method: 'DELETE' })).status, 204);
    assert.equal((await s.fetch('/maven/mixed/org/del/thing/2.0/thing-2.0.jar.sha1')).status, 404);
    assert.equal((await s.fetch('/maven/mixed/org/del/thing/1.0/', { method: 'DELETE' })).status, 204);
    assert.equal((await s.fetch('/maven/mixed/org/del/thing/maven-metadata.xml')).status, 404);
    assert.equal((await s.fetch('/maven/mixed/org/del/thing/1.0/thing-1.0.jar.sha1', { method: 'DELETE' })).status, 405);
  });
});
