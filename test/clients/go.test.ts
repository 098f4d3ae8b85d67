/**
 * The real `go` command (Debian's golang-go) against Granary's GOPROXY endpoints: modules published to a private
 * hosted repository (one over HTTP with an upper-case path segment, one /v2 major version, one by
 * `granary go publish`) are fetched with `go get` / `go mod download` through a GOPROXY list whose first entry
 * 404s, and a program importing all of them builds and runs. The repositories are anonymously readable: `go`
 * sends credentials (~/.netrc or the GOPROXY URL's userinfo) only over https — over plain http it refuses,
 * "refusing to pass credentials to insecure URL" — and this test runs plain http on loopback.
 * Skips, saying why, when `go` is not installed.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, startServer, type TestServer } from '../helpers/server.ts';
import { runGranary } from '../helpers/cli.ts';
import { goWorkspace, missingGo, type GoWorkspace } from '../formats/go/go-run.ts';
import { moduleZip, publishZip } from '../formats/go/zips.ts';

let s: TestServer;
let ws: GoWorkspace;

const ok = async (args: string[], cwd?: string): Promise<string> => {
  const r = await ws.go(args, { cwd });
  assert.equal(r.code, 0, `go ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout + r.stderr;
};

describe('go command', { skip: missingGo(), timeout: 300_000 }, () => {
  before(async () => {
    s = await startServer();
    await s.services.repos.create({ name: 'gohosted', format: 'go', anonymousRead: true }, 'test');
    await s.services.repos.create({ name: 'goempty', format: 'go', anonymousRead: true }, 'test');
    ws = await goWorkspace({
      // The first proxy knows none of these modules: its 404s must make `go` try the next one.
      goproxy: `${s.url}/go/goempty,${s.url}/go/gohosted`,
      nosumdb: 'example.com',
    });

    const up = 'example.com/Acme/Greet';
    for (const v of ['v1.0.0', 'v1.1.0']) {
      const r = await publishZip(s, 'gohosted', up, v, await moduleZip(up, v));
      assert.equal(r.status, 201, r.text);
    }
    const v2 = 'example.com/tools/v2';
    assert.equal((await publishZip(s, 'gohosted', v2, 'v2.3.0', await moduleZip(v2, 'v2.3.0'))).status, 201);
    // v1.1.0 retracts itself: `go get …@latest` must settle on v1.0.0.
    const ret = 'example.com/retracted';
    assert.equal((await publishZip(s, 'gohosted', ret, 'v1.0.0', await moduleZip(ret, 'v1.0.0'))).status, 201);
    const retractMod = `module ${ret}\n\ngo 1.19\n\nretract v1.1.0 // broken\n`;
    assert.equal((await publishZip(s, 'gohosted', ret, 'v1.1.0', await moduleZip(ret, 'v1.1.0', { goMod: retractMod }))).status, 201);

    // One module published the way a developer would: `granary go publish <dir>`.
    const src = join(ws.dir, 'hello-src');
    await mkdir(join(src, 'internal', 'msg'), { recursive: true });
    await writeFile(join(src, 'go.mod'), 'module example.com/cli/hello\n\ngo 1.19\n');
    await writeFile(join(src, 'hello.go'), 'package hello\n\nimport "example.com/cli/hello/internal/msg"\n\nfunc Hello() string { return msg.Text }\n');
    await writeFile(join(src, 'internal', 'msg', 'msg.go'), 'package msg\n\nconst Text = "hello from granary go publish"\n');
    const pub = await runGranary(['go', 'publish', src, '--version', 'v0.1.0', '--repo', 'gohosted', '--server', s.url, '--token', ADMIN_TOKEN], { cwd: ws.dir });
    assert.equal(pub.code, 0, pub.stderr);
  });
  after(async () => {
    await s?.close();
    if (ws) await rm(ws.dir, { recursive: true, force: true });
  });

  it('lists versions (go list -m -versions)', async () => {
    const out = await ok(['list', '-m', '-versions', 'example.com/Acme/Greet']);
    assert.match(out, /^example.com\/Acme\/Greet v1.0.0 v1.1.0$/m);
  });

  it('downloads modules (go mod download -json)', async () => {
    const out = await ok(['mod', 'download', '-json', 'example.com/Acme/Greet@v1.0.0', 'example.com/tools/v2@v2.3.0']);
    const docs = out.split(/\n(?=\{)/).map((d) => JSON.parse(d) as { Path: string; Version: string; Sum: string; Zip: string; Error?: string });
    assert.deepEqual(docs.map((d) => `${d.Path}@${d.Version}`).sort(), ['example.com/Acme/Greet@v1.0.0', 'example.com/tools/v2@v2.3.0']);
    for (const d of docs) {
      assert.equal(d.Error, undefined);
      assert.match(d.Sum, /^h1:/);
      // The module cache stores the upper-case segment escaped, as the proxy URL did.
      if (d.Path.includes('Acme')) assert.match(d.Zip, /example\.com\/!acme\/!greet\/@v\/v1\.0\.0\.zip$/);
    }
  });

  it('go get + go build a program importing them all', async () => {
    const app = join(ws.dir, 'app');
    await mkdir(app);
    await writeFile(join(app, 'go.mod'), 'module example.com/app\n\ngo 1.19\n');
    await writeFile(
      join(app, 'main.go'),
      [
        'package main',
        '',
        'import (',
        '\t"fmt"',
        '',
        '\tgreet "example.com/Acme/Greet"',
        '\t"example.com/cli/hello"',
        '\t"example.com/retracted"',
        '\ttools "example.com/tools/v2"',
        ')',
        '',
        'func main() { fmt.Println(greet.Version, tools.Version, retracted.Version, hello.Hello()) }',
        '',
      ].join('\n'),
    );
    await ok(['get', 'example.com/Acme/Greet@latest', 'example.com/tools/v2@latest', 'example.com/retracted@latest', 'example.com/cli/hello@v0.1.0'], app);
    const goMod = await readFile(join(app, 'go.mod'), 'utf8');
    assert.match(goMod, /example\.com\/Acme\/Greet v1\.1\.0/);
    assert.match(goMod, /example\.com\/tools\/v2 v2\.3\.0/);
    assert.match(goMod, /example\.com\/retracted v1\.0\.0/, 'the retracted v1.1.0 is not chosen');
    const sum = await readFile(join(app, 'go.sum'), 'utf8');
    assert.match(sum, /^example\.com\/cli\/hello v0\.1\.0 h1:/m);
    await ok(['build', '-o', 'app', '.'], app);
    const run = await ws.go(['run', '.'], { cwd: app });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), 'v1.1.0 v2.3.0 v1.0.0 hello from granary go publish');
  });

  it('reports a missing module with the server message', async () => {
    const r = await ws.go(['mod', 'download', 'example.com/nowhere@v1.0.0']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /404 Not Found/);
    assert.match(r.stderr, /not found/);
  });
});
