/**
 * The real `mvn` (Debian's Maven 3.8.7) against Granary, with nothing from anywhere else: every plugin comes
 * through a Granary proxy repository whose upstream is Debian's /usr/share/maven-repo (served over loopback by
 * a static server; it ships no checksum files, so Granary's computed ones are what Maven verifies), behind a
 * group that also holds the hosted repositories. A small project is deployed as a release and twice as a
 * SNAPSHOT (with credentials from settings.xml `<server>` = a Granary API token), then a second project that
 * depends on the SNAPSHOT builds from a fresh local repository. Skips, naming what is missing, without mvn.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { missingClient } from './oci-layout.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { startStaticServer, type StaticServer } from '../formats/maven/static-server.ts';

const DEBIAN_REPO = '/usr/share/maven-repo';
/** The plugins `mvn package deploy` needs, and the Debian packages that put them into /usr/share/maven-repo. */
const PLUGINS: Record<string, string> = {
  'maven-resources-plugin': 'libmaven-resources-plugin-java',
  'maven-compiler-plugin': 'libmaven-compiler-plugin-java',
  'maven-surefire-plugin': 'libsurefire-java',
  'maven-jar-plugin': 'libmaven-jar-plugin-java',
  'maven-install-plugin': 'libmaven-install-plugin-java',
  'maven-deploy-plugin': 'libmaven-deploy-plugin-java',
};
const missingPlugins = Object.entries(PLUGINS).filter(([p]) => !existsSync(`${DEBIAN_REPO}/org/apache/maven/plugins/${p}`));
const skip =
  missingClient('mvn') ||
  (missingPlugins.length ? `${DEBIAN_REPO} lacks ${missingPlugins.map(([p]) => p).join(', ')} (apt-get install -y ${missingPlugins.map(([, d]) => d).join(' ')})` : false);

let s: TestServer;
let up: StaticServer;
let work: string;
let settings: string;

const pom = (artifactId: string, version: string, deps = '') => `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.example</groupId>
  <artifactId>${artifactId}</artifactId>
  <version>${version}</version>
  <properties>
    <maven.compiler.source>11</maven.compiler.source>
    <maven.compiler.target>11</maven.compiler.target>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
  </properties>
  <dependencies>${deps}</dependencies>
</project>
`;

/** settings.xml: everything through the Granary group; the repository `granary` also allows SNAPSHOTs. */
function settingsXml(token: string): string {
  const group = `${s.url}/maven/public/`;
  const server = (id: string) => `<server><id>${id}</id><username>ci</username><password>${token}</password></server>`;
  return `<settings>
  <servers>${server('granary-mirror')}${server('granary')}${server('granary-deploy')}</servers>
  <mirrors><mirror><id>granary-mirror</id><mirrorOf>*,!granary</mirrorOf><url>${group}</url></mirror></mirrors>
  <profiles><profile><id>granary</id><repositories><repository><id>granary</id><url>${group}</url>
    <releases><enabled>true</enabled></releases><snapshots><enabled>true</enabled></snapshots></repository></repositories></profile></profiles>
  <activeProfiles><activeProfile>granary</activeProfile></activeProfiles>
</settings>
`;
}

async function project(name: string, pomXml: string, cls: string, source: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(join(dir, 'src/main/java/com/example'), { recursive: true });
  await writeFile(join(dir, 'pom.xml'), pomXml);
  await writeFile(join(dir, `src/main/java/com/example/${cls}.java`), source);
  return dir;
}

/** Runs mvn lean (batch, quiet, no tests) with its own local repository; returns output and seconds taken. */
function mvn(cwd: string, localRepo: string, args: string[]): Promise<{ code: number | null; out: string; seconds: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('mvn', ['-B', '-q', '-s', settings, `-Dmaven.repo.local=${localRepo}`, '-Dmaven.test.skip=true', ...args], { cwd, env: { ...process.env, MAVEN_OPTS: '-XX:TieredStopAtLevel=1 -Xshare:auto' } });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out, seconds: (performance.now() - t0) / 1000 }));
  });
}

describe('mvn against Granary', { skip }, () => {
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'granary-mvn-'));
    up = await startStaticServer(DEBIAN_REPO);
    s = await startServer();
    const repo = async (body: Record<string, unknown>) => assert.equal((await s.api('POST', '/repositories', { format: 'maven', ...body })).status, 201);
    await repo({ name: 'debian', kind: 'proxy', upstream: up.url });
    await repo({ name: 'releases', options: { policy: 'release' } });
    await repo({ name: 'snapshots', options: { policy: 'snapshot', snapshotRetention: 5 } });
    await repo({ name: 'public', kind: 'group', members: ['releases', 'snapshots', 'debian'] });
    assert.equal((await s.api('POST', '/users', { name: 'ci', password: 'ci-password-123' })).status, 201);
    for (const [repository, role] of [['releases', 'write'], ['snapshots', 'write'], ['public', 'read'], ['debian', 'read']]) {
      assert.equal((await s.api('PUT', '/bindings', { user: 'ci', repository, role })).status, 204);
    }
    const token = (await s.api<{ token: string }>('POST', '/tokens', { user: 'ci', name: 'maven' })).body.token;
    settings = join(work, 'settings.xml');
    await writeFile(settings, settingsXml(token));
  });
  after(async () => {
    await s?.close();
    await up?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('deploys a release and SNAPSHOTs, and a dependent project builds from them — all through Granary', { timeout: 240_000 }, async () => {
    const hello = await project('hello', pom('hello', '1.0.0'), 'Hello', 'package com.example;\npublic class Hello { public static String greet() { return "hi"; } }\n');
    const producerRepo = join(work, 'm2-producer');
    const deployTo = (repo: string) => `-DaltDeploymentRepository=granary-deploy::${s.url}/maven/${repo}/`;

    const rel = await mvn(hello, producerRepo, [deployTo('releases'), 'deploy']);
    assert.equal(rel.code, 0, rel.out);
    console.log(`# mvn deploy (release, plugins resolved through the proxy): ${rel.seconds.toFixed(1)} s`);
    const relMeta = await (await s.fetch('/maven/releases/com/example/hello/maven-metadata.xml')).text();
    assert.match(relMeta, /<release>1\.0\.0<\/release>/);
    // Redeploying the release is refused, and Maven says why.
    const again = await mvn(hello, producerRepo, [deployTo('releases'), 'deploy']);
    assert.notEqual(again.code, 0);
    assert.match(again.out, /status: 409 .*releases cannot be redeployed/);
    // Nothing logged a checksum problem: Granary served checksums for every file, upstream ones included.
    assert.doesNotMatch(rel.out + again.out, /[Cc]hecksum/);

    await writeFile(join(hello, 'pom.xml'), pom('hello', '1.1-SNAPSHOT'));
    for (let i = 0; i < 2; i++) {
      const snap = await mvn(hello, producerRepo, [deployTo('snapshots'), 'deploy']);
      assert.equal(snap.code, 0, snap.out);
      console.log(`# mvn deploy (SNAPSHOT ${i + 1}): ${snap.seconds.toFixed(1)} s`);
    }
    const snapMeta = await (await s.fetch('/maven/public/com/example/hello/1.1-SNAPSHOT/maven-metadata.xml')).text();
    assert.match(snapMeta, /<buildNumber>2<\/buildNumber>/);
    const artMeta = await (await s.fetch('/maven/public/com/example/hello/maven-metadata.xml')).text();
    assert.match(artMeta, /<version>1\.0\.0<\/version>\s*<version>1\.1-SNAPSHOT<\/version>/);

    const dep = '<dependency><groupId>com.example</groupId><artifactId>hello</artifactId><version>1.1-SNAPSHOT</version></dependency>';
    const app = await project('app', pom('app', '1.0', dep), 'App', 'package com.example;\npublic class App { public static void main(String[] a) { System.out.println(Hello.greet()); } }\n');
    const consumerRepo = join(work, 'm2-consumer');
    const cons = await mvn(app, consumerRepo, ['package']);
    assert.equal(cons.code, 0, cons.out);
    console.log(`# mvn package (consumer, fresh local repository): ${cons.seconds.toFixed(1)} s`);
    assert.ok(existsSync(join(app, 'target/app-1.0.jar')));
    assert.ok(existsSync(join(consumerRepo, 'com/example/hello/1.1-SNAPSHOT')));
    // The plugins really came through the proxy, and the proxy cached them once.
    const fetched = up.requests.filter((r) => r.startsWith('GET ') && r.endsWith('.jar'));
    assert.ok(fetched.some((r) => r.includes('maven-compiler-plugin')), 'compiler plugin fetched through the proxy');
    assert.equal(new Set(fetched).size, fetched.length, 'each jar fetched from the upstream once');
  });
});
