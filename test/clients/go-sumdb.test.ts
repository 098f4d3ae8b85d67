/**
 * Checksum verification by the real `go` command through Granary's `/sumdb/` forwarding. A loopback checksum
 * database with its own signing key (test/formats/go/fake-sumdb.ts) stands in for sum.golang.org; `go` is told to
 * trust it with GOSUMDB=<name>+<key> and knows no URL for it, so every lookup and tile must come through Granary.
 * A module whose record matches downloads; one whose record does not is refused by `go` as a SECURITY ERROR — so
 * the verification really happened. Granary keeps the sumdb's answers: a second `go` with an empty module cache
 * costs the sumdb nothing, and with the sumdb answering 503 what was verified once still verifies (and what was
 * refused is still refused), while a module never looked up fails with the sumdb's error. Skips, saying why, when
 * `go` is not installed.
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../helpers/server.ts';
import { goWorkspace, missingGo, type GoWorkspace } from '../formats/go/go-run.ts';
import { h1, record, startFakeSumdb, type FakeSumdb } from '../formats/go/fake-sumdb.ts';
import { publishZip, rawZip, type ZipFiles } from '../formats/go/zips.ts';

const SUMDB = 'sum.granary.test';
let s: TestServer;
let db: FakeSumdb;
let ws: GoWorkspace;

/** Publishes module@v1.0.0 and returns its zip and go.mod h1 hashes, computed from the files themselves. */
async function publishModule(module: string): Promise<{ zip: string; mod: string }> {
  const goMod = `module ${module}\n\ngo 1.19\n`;
  const files: ZipFiles = [
    ['go.mod', goMod],
    ['lib.go', 'package lib\n\nconst Name = "verified"\n'],
  ];
  const prefixed: ZipFiles = files.map(([n, c]) => [`${module}@v1.0.0/${n}`, c]);
  const r = await publishZip(s, 'public', module, 'v1.0.0', await rawZip(prefixed));
  assert.equal(r.status, 201, r.text);
  return { zip: h1(prefixed.map(([n, c]) => [n, Buffer.from(c)])), mod: h1([['go.mod', goMod]]) };
}

describe('go verifies checksums through /sumdb/', { skip: missingGo(), timeout: 300_000 }, () => {
  before(async () => {
    s = await startServer();
    await s.services.repos.create({ name: 'public', format: 'go', anonymousRead: true }, 'test');
    const good = await publishModule('example.org/good');
    const bad = await publishModule('example.org/tampered');
    const unseen = await publishModule('example.org/unseen');
    const wrong = 'h1:' + Buffer.alloc(32, 7).toString('base64');
    db = await startFakeSumdb(SUMDB, [
      { module: 'example.org/other', version: 'v0.1.0', text: record('example.org/other', 'v0.1.0', wrong, wrong) },
      { module: 'example.org/good', version: 'v1.0.0', text: record('example.org/good', 'v1.0.0', good.zip, good.mod) },
      // The log says the zip is something else than what the repository serves: go must refuse it.
      { module: 'example.org/tampered', version: 'v1.0.0', text: record('example.org/tampered', 'v1.0.0', wrong, bad.mod) },
      { module: 'example.org/unseen', version: 'v1.0.0', text: record('example.org/unseen', 'v1.0.0', unseen.zip, unseen.mod) },
    ]);
    await s.services.repos.update('public', { options: { sumdb: { [SUMDB]: db.url } } }, 'test');
    // Verify everything against our database (no GONOSUMDB: nothing is exempt).
    ws = await goWorkspace({ goproxy: `${s.url}/go/public`, gosumdb: db.gosumdb });
  });
  after(async () => {
    await s?.close();
    await db?.close();
    if (ws) await rm(ws.dir, { recursive: true, force: true });
  });

  it('downloads a module whose checksums the log confirms', async () => {
    const r = await ws.go(['mod', 'download', '-json', 'example.org/good@v1.0.0']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal((JSON.parse(r.stdout) as { Error?: string }).Error, undefined);
    assert.ok(db.seen.includes('/lookup/example.org/good@v1.0.0'), db.seen.join(' '));
    assert.ok(db.seen.includes('/tile/8/0/000.p/4'), db.seen.join(' '));
    // go remembers the verified tree head of this database.
    const latest = await readFile(join(ws.env.GOPATH, 'pkg', 'sumdb', SUMDB, 'latest'), 'utf8');
    assert.match(latest, /^go.sum database tree\n4\n/);
  });

  it('refuses a module the log disagrees with', async () => {
    const r = await ws.go(['mod', 'download', 'example.org/tampered@v1.0.0']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /checksum mismatch/);
    assert.match(r.stderr, /SECURITY ERROR/);
    assert.match(r.stderr, new RegExp(`${SUMDB}: h1:`), 'the mismatch is reported against our database');
  });

  it('verifies again from Granary\'s cache: one sumdb request per lookup and tile', async () => {
    const asked = sumdbRequests();
    assert.equal(count('/lookup/example.org/good@v1.0.0'), 1);
    assert.equal(count('/tile/8/0/000.p/4'), 1, 'go cached the tile itself after the first download');
    const r = await ws.go(['mod', 'download', 'example.org/good@v1.0.0'], { env: freshModCache() });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sumdbRequests(), asked, `no new lookup or tile request: ${db.seen.join(' ')}`);
  });

  it('keeps verifying what it verified before while the sumdb answers 503', async () => {
    db.down = true;
    try {
      const good = await ws.go(['mod', 'download', '-json', 'example.org/good@v1.0.0'], { env: freshModCache() });
      assert.equal(good.code, 0, good.stderr + good.stdout);
      assert.equal((JSON.parse(good.stdout) as { Error?: string }).Error, undefined);
      // A cached answer is no free pass: the record that contradicts the zip is still refused.
      const bad = await ws.go(['mod', 'download', 'example.org/tampered@v1.0.0'], { env: freshModCache() });
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /SECURITY ERROR/);
      // Never looked up: nothing can stand in, and go says why.
      const unseen = await ws.go(['mod', 'download', 'example.org/unseen@v1.0.0'], { env: freshModCache() });
      assert.notEqual(unseen.code, 0);
      assert.match(unseen.stderr, /example.org\/unseen@v1.0.0/);
      assert.match(unseen.stderr, /checksum database sum.granary.test answered 503/);
    } finally {
      db.down = false;
    }
  });
});

let caches = 0;
/** An empty module cache (and with it go's sumdb cache); -modcacherw so the temp dir can be removed. */
function freshModCache(): Record<string, string> {
  return { GOMODCACHE: join(ws.dir, `modcache-${++caches}`), GOFLAGS: '-mod=mod -modcacherw' };
}
const count = (path: string) => db.seen.filter((p) => p === path).length;
const sumdbRequests = () => db.seen.filter((p) => p.startsWith('/lookup/') || p.startsWith('/tile/')).length;
