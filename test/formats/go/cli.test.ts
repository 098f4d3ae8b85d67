/**
 * `granary go publish` as a user runs it (bin/granary spawned with a clean environment): which files of a
 * directory go into the module zip (x/mod's CreateFromDir rules), refusals before anything is uploaded, the upload
 * to a real server, and the exit codes (0 ok, 1 version exists, 2 usage / refused input).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import yauzl from 'yauzl';
import { runGranary, type CliRun } from '../../helpers/cli.ts';
import { ADMIN_TOKEN, startServer, type TestServer } from '../../helpers/server.ts';

let s: TestServer;
let cwd: string;

async function tree(root: string, files: Record<string, string>): Promise<string> {
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, name)), { recursive: true });
    await writeFile(join(root, name), content);
  }
  return root;
}

async function expectExit(code: number, args: string[]): Promise<CliRun> {
  const r = await runGranary(args, { cwd });
  assert.equal(r.code, code, `granary ${args.join(' ')} exited ${r.code}, expected ${code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

async function zipNames(file: string): Promise<string[]> {
  const z = await yauzl.openPromise(file, { lazyEntries: true });
  const names: string[] = [];
  for await (const e of z.eachEntry()) names.push(e.fileName);
  z.close();
  return names;
}

before(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'granary-go-cli-'));
  s = await startServer();
  await s.services.repos.create({ name: 'gocli', format: 'go', anonymousRead: true }, 'test');
});
after(async () => {
  await s?.close();
  await rm(cwd, { recursive: true, force: true });
});

describe('granary go publish', () => {
  let mod: string;

  before(async () => {
    mod = await tree(join(cwd, 'mod'), {
      'go.mod': 'module example.com/Tool/m\n\ngo 1.19\n',
      'm.go': 'package m\n',
      'internal/x/x.go': 'package x\n',
      '.git/config': '[core]\n',
      'nested/.svn/entries': 'x',
      'sub/go.mod': 'module example.com/Tool/m/sub\n',
      'sub/s.go': 'package sub\n',
      'vendor/modules.txt': '# example.com/dep v1.0.0\n',
      'vendor/example.com/dep/dep.go': 'package dep\n',
      'pkg/vendor/v.go': 'package vendor\n',
      '.hg_archival.txt': 'repo: x\n',
    });
    await symlink('m.go', join(mod, 'link.go'));
  });

  it('builds the zip by the module-zip rules (--output)', async () => {
    const out = join(cwd, 'm.zip');
    const r = await expectExit(0, ['go', 'publish', mod, '--version', 'v1.0.0', '--output', out, '--json']);
    const report = JSON.parse(r.stdout) as { files: number; omitted: { name: string; why: string }[] };
    const p = 'example.com/Tool/m@v1.0.0/';
    assert.deepEqual((await zipNames(out)).sort(), [`${p}go.mod`, `${p}internal/x/x.go`, `${p}m.go`, `${p}vendor/modules.txt`]);
    assert.equal(report.files, 4);
    const why = Object.fromEntries(report.omitted.map((o) => [o.name, o.why]));
    assert.match(why['.git/'], /version control/);
    assert.match(why['nested/.svn/'], /version control/);
    assert.match(why['sub/'], /another module/);
    assert.match(why['vendor/example.com/dep/dep.go'], /vendor/);
    assert.match(why['pkg/vendor/v.go'], /vendor/);
    assert.match(why['link.go'], /not a regular file/);
    assert.match(why['.hg_archival.txt'], /hg archive/);
  });

  it('publishes to a server, then refuses to publish the same version again', async () => {
    const args = ['go', 'publish', mod, '--version', 'v1.0.0', '--repo', 'gocli', '--server', s.url, '--token', ADMIN_TOKEN];
    const r = await expectExit(0, args);
    assert.match(r.stdout, /example.com\/Tool\/m@v1.0.0: published to gocli \(4 files, \d+ bytes\)/);
    const info = await s.fetch('/go/gocli/example.com/!tool/m/@v/v1.0.0.info', { auth: null });
    assert.equal(info.status, 200);
    const again = await expectExit(1, args);
    assert.match(again.stderr, /already exists in gocli; module versions are immutable/);
  });

  it('publishes a +incompatible version of a directory without go.mod (--module)', async () => {
    const old = await tree(join(cwd, 'old'), { 'old.go': 'package old\n' });
    const r = await expectExit(0, ['go', 'publish', old, '--module', 'example.com/old', '--version', 'v2.1.0+incompatible', '--repo', 'gocli', '--server', s.url, '--token', ADMIN_TOKEN]);
    assert.match(r.stdout, /example.com\/old@v2.1.0\+incompatible: published/);
    assert.equal(await (await s.fetch('/go/gocli/example.com/old/@v/v2.1.0+incompatible.mod', { auth: null })).text(), 'module example.com/old\n');
  });

  it('refuses bad input before uploading, with exit 2', async () => {
    const bad = await tree(join(cwd, 'bad'), { 'go.mod': 'module example.com/bad\n', 'Readme.md': 'a', 'README.md': 'b', 'x:y.go': 'package bad\n' });
    const r = await expectExit(2, ['go', 'publish', bad, '--version', 'v1.0.0', '--output', join(cwd, 'bad.zip')]);
    assert.match(r.stderr, /case-insensitive file name collision: "README.md" and "Readme.md"/);
    assert.match(r.stderr, /x:y.go: malformed file path "x:y.go": invalid char ":"/);
    const major = await expectExit(2, ['go', 'publish', mod, '--version', 'v2.0.0', '--output', join(cwd, 'v2.zip')]);
    assert.match(major.stderr, /should be v0 or v1, not v2/);
    const noMod = await tree(join(cwd, 'nomod'), { 'a.go': 'package a\n' });
    assert.match((await expectExit(2, ['go', 'publish', noMod, '--version', 'v1.0.0', '--output', join(cwd, 'n.zip')])).stderr, /go.mod is missing/);
    assert.match((await expectExit(2, ['go', 'publish', mod, '--version', 'v1.1.0'])).stderr, /--repo is required/);
    assert.match((await expectExit(2, ['go', 'publish', mod, '--version', 'v1.1.0', '--module', 'example.com/x', '-o', join(cwd, 'x.zip')])).stderr, /does not match/);
    const denied = await expectExit(2, ['go', 'publish', mod, '--version', 'v1.1.0', '--repo', 'gocli', '--server', s.url, '--token', 'wrong-token-0000000000']);
    assert.match(denied.stderr, /HTTP 401/);
  });
});
