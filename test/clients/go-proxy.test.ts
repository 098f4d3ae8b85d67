/**
 * The real `go` command through a Granary Go proxy repository whose upstream is another Granary's hosted
 * repository: the first `go get` + `go build` (fresh module cache) fills the proxy's cache; with the upstream
 * Granary stopped, a second workspace with its own fresh module cache resolves, downloads and builds the same
 * program from the cache alone. Skips, saying why, when `go` is not installed.
 */
import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../helpers/server.ts';
import { goWorkspace, missingGo, type GoWorkspace } from '../formats/go/go-run.ts';
import { moduleZip, publishZip } from '../formats/go/zips.ts';

let upstream: TestServer;
let upstreamUp = false;
let s: TestServer;
const workspaces: GoWorkspace[] = [];

const MODS = ['example.com/Corp/Util', 'example.com/corp/api/v2'] as const;

/** A program importing both modules, fetched with `go get …@latest` and built in a fresh workspace. */
async function buildApp(ws: GoWorkspace): Promise<string> {
  const app = join(ws.dir, 'app');
  await mkdir(app);
  await writeFile(join(app, 'go.mod'), 'module example.com/app\n\ngo 1.19\n');
  await writeFile(
    join(app, 'main.go'),
    'package main\n\nimport (\n\t"fmt"\n\n\tutil "example.com/Corp/Util"\n\tapi "example.com/corp/api/v2"\n)\n\nfunc main() { fmt.Println(util.Version, api.Version) }\n',
  );
  for (const args of [['get', ...MODS.map((m) => `${m}@latest`)], ['build', '-o', 'app', '.'], ['run', '.']]) {
    const r = await ws.go(args, { cwd: app });
    assert.equal(r.code, 0, `go ${args.join(' ')} failed:\n${r.stderr}`);
    if (args[0] === 'run') return r.stdout.trim();
  }
  throw new Error('unreachable');
}

describe('go through a proxy repository', { skip: missingGo(), timeout: 300_000 }, () => {
  before(async () => {
    upstream = await startServer();
    upstreamUp = true;
    await upstream.services.repos.create({ name: 'upstream-hosted', format: 'go', anonymousRead: true }, 'test');
    for (const [m, v] of [[MODS[0], 'v1.4.0'], [MODS[1], 'v2.0.1']] as const) {
      const r = await publishZip(upstream, 'upstream-hosted', m, v, await moduleZip(m, v));
      assert.equal(r.status, 201, r.text);
    }
    s = await startServer();
    // metadataTtlSeconds 0: list/@latest go to the upstream every time, so the second run really exercises the
    // fallback to the cache when the upstream is down (not just a fresh-enough cache entry).
    await s.services.repos.create(
      { name: 'goproxy', format: 'go', kind: 'proxy', upstream: `${upstream.url}/go/upstream-hosted`, anonymousRead: true, options: { proxy: { metadataTtlSeconds: 0, retries: 0 } } },
      'test',
    );
  });
  after(async () => {
    await s?.close();
    if (upstreamUp) await upstream?.close();
    for (const w of workspaces) await rm(w.dir, { recursive: true, force: true });
  });

  it('first fetch fills the cache', async () => {
    const ws = await goWorkspace({ goproxy: `${s.url}/go/goproxy`, nosumdb: 'example.com' });
    workspaces.push(ws);
    assert.equal(await buildApp(ws), 'v1.4.0 v2.0.1');
  });

  it('a fresh module cache still builds with the upstream stopped', async () => {
    await upstream.close();
    upstreamUp = false;
    const down = await fetch(`${upstream.url}/go/upstream-hosted/example.com/!corp/!util/@v/list`).then(
      () => 'up',
      () => 'down',
    );
    assert.equal(down, 'down', 'the upstream is really gone');
    const ws = await goWorkspace({ goproxy: `${s.url}/go/goproxy`, nosumdb: 'example.com' });
    workspaces.push(ws);
    assert.equal(await buildApp(ws), 'v1.4.0 v2.0.1');
  });
});
