/**
 * Maven groups: maven-metadata.xml merged across members (versions united, latest/release recomputed, the
 * newest SNAPSHOT build winning), files from the first member that has them, deploys through the group landing
 * in its writeMember, and members the caller may not read left out of every answer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { basic, startServer, type TestServer } from '../../helpers/server.ts';
import { createRepo, deployFile, getMetadata, getText, pom } from './support.ts';

let s: TestServer;
const A = 'org/acme/tool';

before(async () => {
  s = await startServer();
  await createRepo(s, { name: 'rel' });
  await createRepo(s, { name: 'snap' });
  await createRepo(s, { name: 'secret' });
  await createRepo(s, { name: 'all', kind: 'group', members: ['rel', 'snap', 'secret'], writeMember: 'snap' });
  await deployFile(s, 'rel', `${A}/1.0/tool-1.0.pom`, pom('org.acme', 'tool', '1.0'));
  await deployFile(s, 'rel', `${A}/1.0/tool-1.0.jar`, 'rel 1.0');
  await deployFile(s, 'snap', `${A}/1.0/tool-1.0.jar`, 'snap 1.0 (shadowed)');
  await deployFile(s, 'snap', `${A}/2.0/tool-2.0.jar`, 'snap 2.0');
  await deployFile(s, 'snap', `${A}/2.1-SNAPSHOT/tool-2.1-20261123.090000-1.jar`, 'old build');
  await deployFile(s, 'rel', `${A}/2.1-SNAPSHOT/tool-2.1-20261123.100000-3.jar`, 'newer build');
  await deployFile(s, 'secret', `${A}/9.0/tool-9.0.jar`, 'hidden');
  await s.api('POST', '/users', { name: 'reader', password: 'reader-password-1' });
  for (const r of ['all', 'rel', 'snap']) await s.api('PUT', '/bindings', { user: 'reader', repository: r, role: 'read' });
});
after(() => s.close());

describe('maven group', () => {
  it('merges artifact metadata: versions united, latest and release recomputed', async () => {
    const m = await getMetadata(s, `/maven/all/${A}/maven-metadata.xml`);
    assert.deepEqual(m.versioning.versions.version, ['1.0', '2.0', '2.1-SNAPSHOT', '9.0']);
    assert.equal(m.versioning.latest, '9.0');
    assert.equal(m.versioning.release, '9.0');
    assert.deepEqual((await getMetadata(s, `/maven/rel/${A}/maven-metadata.xml`)).versioning.versions.version, ['1.0', '2.1-SNAPSHOT']);
  });

  it('merges SNAPSHOT version metadata: the newest build of any member wins', async () => {
    const m = await getMetadata(s, `/maven/all/${A}/2.1-SNAPSHOT/maven-metadata.xml`);
    assert.equal(m.versioning.snapshot.buildNumber, '3');
    assert.equal(m.versioning.snapshotVersions.snapshotVersion[0].value, '2.1-20261123.100000-3');
  });

  it('serves files from the first member that has them', async () => {
    assert.equal((await getText(s, `/maven/all/${A}/1.0/tool-1.0.jar`)).body, 'rel 1.0');
    assert.equal((await getText(s, `/maven/all/${A}/2.0/tool-2.0.jar`)).body, 'snap 2.0');
    assert.equal((await getText(s, `/maven/all/${A}/2.0/tool-2.0.jar.sha1`)).status, 200);
  });

  it('leaves out members the caller may not read', async () => {
    const auth = basic('reader', 'reader-password-1');
    const res = await s.fetch(`/maven/all/${A}/maven-metadata.xml`, { auth });
    const xml = await res.text();
    assert.equal(res.status, 200);
    assert.doesNotMatch(xml, /9\.0/);
    assert.match(xml, /<latest>2\.1-SNAPSHOT<\/latest>/);
    assert.equal((await s.fetch(`/maven/all/${A}/9.0/tool-9.0.jar`, { auth })).status, 404);
    assert.doesNotMatch(await (await s.fetch(`/maven/all/${A}/`, { auth })).text(), /9\.0/);
  });

  it('sends deploys to the writeMember', async () => {
    assert.equal(await deployFile(s, 'all', `${A}/3.0/tool-3.0.jar`, 'via group'), 201);
    assert.equal((await getText(s, `/maven/snap/${A}/3.0/tool-3.0.jar`)).body, 'via group');
    assert.equal((await getText(s, `/maven/rel/${A}/3.0/tool-3.0.jar`)).status, 404);
    assert.equal((await s.fetch(`/maven/all/${A}/3.0/tool-3.0.jar`, { method: 'DELETE' })).status, 405);
  });
});
