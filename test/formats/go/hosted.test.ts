/**
 * Hosted Go repositories over real HTTP: publishing module zips, the GOPROXY endpoints (`list`, `.info`, `.mod`,
 * `.zip`, `@latest`) with case-escaped paths, retractions, pseudo-versions and +incompatible, immutability, every
 * module-zip rule a bad upload can break, and permissions. The real `go` command is in test/clients/go.test.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../../helpers/server.ts';
import { moduleZip, publishZip, rawZip, renameEntry, zipUrl } from './zips.ts';

let s: TestServer;
let READER: string;

before(async () => {
  s = await startServer();
  await s.services.repos.create({ name: 'gomods', format: 'go', anonymousRead: true }, 'test');
  await s.services.repos.create({ name: 'private', format: 'go', anonymousRead: false }, 'test');
  await s.services.accounts.addUser({ name: 'rita' }, 'test');
  await s.services.accounts.grant({ user: 'rita', repository: 'gomods', role: 'read' }, 'test');
  READER = (await s.services.accounts.createToken({ name: 'rita-token', user: 'rita' }, 'test')).token;
});
after(() => s?.close());

const get = (path: string, auth?: string | null) => s.fetch(path, { auth });

async function text(path: string, auth?: string | null): Promise<{ status: number; body: string; type: string | null }> {
  const res = await get(path, auth);
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
}

describe('publish and read back', () => {
  const mod = 'example.com/Upper/lib';
  let zip: Buffer;

  it('publishes a module zip and derives .mod and .info', async () => {
    zip = await moduleZip(mod, 'v1.0.0');
    const before = Date.now();
    const r = await publishZip(s, 'gomods', mod, 'v1.0.0', zip);
    assert.equal(r.status, 201, r.text);
    const out = JSON.parse(r.text) as { module: string; version: string; time: string; size: number };
    assert.equal(out.module, mod);
    assert.equal(out.size, zip.length);

    const info = await text('/go/gomods/example.com/!upper/lib/@v/v1.0.0.info', null);
    assert.equal(info.status, 200, info.body);
    assert.equal(info.type, 'application/json');
    const parsed = JSON.parse(info.body) as { Version: string; Time: string };
    assert.equal(parsed.Version, 'v1.0.0');
    assert.match(parsed.Time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok(Date.parse(parsed.Time) >= Math.floor(before / 1000) * 1000, 'Time is the publish time');

    const gm = await text('/go/gomods/example.com/!upper/lib/@v/v1.0.0.mod', null);
    assert.equal(gm.status, 200);
    assert.equal(gm.body, `module ${mod}\n\ngo 1.19\n`);
    assert.match(gm.type ?? '', /^text\/plain/);

    const z = await get('/go/gomods/example.com/!upper/lib/@v/v1.0.0.zip', null);
    assert.equal(z.status, 200);
    assert.equal(z.headers.get('content-type'), 'application/zip');
    assert.deepEqual(Buffer.from(await z.arrayBuffer()), zip);
  });

  it('lists versions and answers @latest', async () => {
    assert.equal((await publishZip(s, 'gomods', mod, 'v1.1.0-rc.1', await moduleZip(mod, 'v1.1.0-rc.1'))).status, 201);
    assert.equal((await publishZip(s, 'gomods', mod, 'v0.9.0', await moduleZip(mod, 'v0.9.0'))).status, 201);
    const list = await text('/go/gomods/example.com/!upper/lib/@v/list', null);
    assert.equal(list.status, 200);
    assert.equal(list.body, 'v0.9.0\nv1.0.0\nv1.1.0-rc.1\n');
    const etag = (await get('/go/gomods/example.com/!upper/lib/@v/list', null)).headers.get('etag');
    assert.ok(etag, 'list has an ETag');
    const again = await s.fetch('/go/gomods/example.com/!upper/lib/@v/list', { auth: null, headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304, 'unchanged list: 304');
    const latest = await text('/go/gomods/example.com/!upper/lib/@latest', null);
    assert.equal(latest.status, 200);
    assert.equal((JSON.parse(latest.body) as { Version: string }).Version, 'v1.0.0', 'a release beats a newer prerelease');
  });

  it('refuses to republish a version, even with the same bytes', async () => {
    const r = await publishZip(s, 'gomods', mod, 'v1.0.0', zip);
    assert.equal(r.status, 409);
    assert.match(r.text, /already exists.*immutable/);
    const other = await publishZip(s, 'gomods', mod, 'v1.0.0', await moduleZip(mod, 'v1.0.0', { extra: [['x.txt', 'changed']] }));
    assert.equal(other.status, 409);
    const z = await get(zipUrl('gomods', mod, 'v1.0.0'), null);
    assert.deepEqual(Buffer.from(await z.arrayBuffer()), zip, 'the first upload is still served');
  });

  it('answers 404 in plain text for unknown modules, versions and queries', async () => {
    for (const path of [
      '/go/gomods/example.com/nothing/@v/list',
      '/go/gomods/example.com/nothing/@latest',
      '/go/gomods/example.com/!upper/lib/@v/v9.9.9.info',
      '/go/gomods/example.com/!upper/lib/@v/master.info',
      '/go/gomods/example.com/!upper/lib/@v/v1.0.info',
    ]) {
      const r = await text(path, null);
      assert.equal(r.status, 404, path);
      assert.match(r.type ?? '', /^text\/plain/, path);
      assert.match(r.body, /not found/, path);
    }
  });

  it('requires the case-escaped form in URLs', async () => {
    const r = await text('/go/gomods/example.com/Upper/lib/@v/list', null);
    assert.equal(r.status, 400);
    assert.match(r.body, /invalid escaped module path/);
    assert.equal((await text('/go/gomods/example.com/!!upper/lib/@v/list', null)).status, 400);
  });
});

describe('reading zips from the blob store', () => {
  it('checks a zip of many entries of mixed sizes, small ones read through windows and large ones streamed', async () => {
    const mod = 'example.com/many';
    // Random bytes do not compress: a wrong byte from a window would break inflation or the declared sizes.
    const sizes = Array.from({ length: 300 }, (_, i) => (i % 7 === 0 ? 70_000 + i : 1 + ((i * 7919) % 9000)));
    const extra = sizes.map((n, i): [string, Buffer] => [`d${i % 9}/f${i}.bin`, randomBytes(n)]);
    const zip = await moduleZip(mod, 'v1.0.0', { extra });
    const r = await publishZip(s, 'gomods', mod, 'v1.0.0', zip);
    assert.equal(r.status, 201, r.text);
    assert.equal((JSON.parse(r.text) as { size: number }).size, zip.length);
    // Corrupt one byte of one file's content (incompressible data is stored verbatim inside the deflate stream).
    const v2 = await moduleZip(mod, 'v1.0.1', { extra });
    const at = v2.indexOf(extra[5][1].subarray(100, 164));
    assert.ok(at > 0, 'the file content is in the zip as is');
    v2[at] ^= 0xff;
    const b = await publishZip(s, 'gomods', mod, 'v1.0.1', v2);
    assert.equal(b.status, 422, b.text);
    assert.match(b.text, /d5\/f5.bin: checksum error/);
  });
});

describe('versions and major-version suffixes', () => {
  it('accepts /v2 modules at v2 and refuses other majors', async () => {
    const v2 = 'example.com/major/v2';
    assert.equal((await publishZip(s, 'gomods', v2, 'v2.1.0', await moduleZip(v2, 'v2.1.0'))).status, 201);
    const wrong = await publishZip(s, 'gomods', v2, 'v1.0.0', await moduleZip(v2, 'v1.0.0'));
    assert.equal(wrong.status, 400);
    assert.match(wrong.text, /should be v2, not v1/);
    const noSuffix = await publishZip(s, 'gomods', 'example.com/major', 'v2.0.0', await moduleZip('example.com/major', 'v2.0.0'));
    assert.equal(noSuffix.status, 400);
    assert.match(noSuffix.text, /should be v0 or v1, not v2/);
  });

  it('refuses non-canonical and malformed versions and paths', async () => {
    for (const [mod, v, re] of [
      ['example.com/x', 'v1.0', /not a canonical version/],
      ['example.com/x', '1.0.0', /not a semantic version/],
      ['example.com/x', 'v1.0.0+build', /not a canonical version/],
      ['example.com/x', 'v1.0.0+incompatible', /major version v1 is compatible/],
      ['example.com/x/v1', 'v1.0.0', /malformed module path/],
      ['nodot/x', 'v1.0.0', /missing dot in first path element/],
    ] as const) {
      const r = await publishZip(s, 'gomods', mod, v, await rawZip([[`${mod}@${v}/go.mod`, `module ${mod}\n`]]));
      assert.equal(r.status, 400, `${mod}@${v}: ${r.text}`);
      assert.match(r.text, re);
    }
  });

  it('accepts +incompatible versions without go.mod and synthesizes their .mod', async () => {
    const mod = 'example.com/old';
    const zip = await rawZip([[`${mod}@v3.0.0+incompatible/old.go`, 'package old\n']]);
    const r = await publishZip(s, 'gomods', mod, 'v3.0.0+incompatible', zip);
    assert.equal(r.status, 201, r.text);
    assert.equal((await text('/go/gomods/example.com/old/@v/v3.0.0+incompatible.mod', null)).body, 'module example.com/old\n');
    const withMod = await publishZip(s, 'gomods', mod, 'v4.0.0+incompatible', await moduleZip(mod, 'v4.0.0+incompatible'));
    assert.equal(withMod.status, 422);
    assert.match(withMod.text, /must not have a go.mod/);
  });

  it('accepts pseudo-versions, keeps them out of list, and falls back to them for @latest', async () => {
    const mod = 'example.com/pseudo';
    const v = 'v0.0.0-20240102150405-abcdef123456';
    assert.equal((await publishZip(s, 'gomods', mod, v, await moduleZip(mod, v))).status, 201);
    const list = await text('/go/gomods/example.com/pseudo/@v/list', null);
    assert.equal(list.status, 200);
    assert.equal(list.body, '');
    assert.equal((JSON.parse((await text('/go/gomods/example.com/pseudo/@latest', null)).body) as { Version: string }).Version, v);
    assert.equal((await text(`/go/gomods/example.com/pseudo/@v/${v}.info`, null)).status, 200);
  });

  it('honours retractions in the latest go.mod for @latest', async () => {
    const mod = 'example.com/retracting';
    for (const v of ['v1.0.0', 'v1.1.0', 'v1.1.1']) assert.equal((await publishZip(s, 'gomods', mod, v, await moduleZip(mod, v))).status, 201);
    const goMod = `module ${mod}\n\ngo 1.19\n\nretract (\n\tv1.2.0 // published by mistake\n\t[v1.1.0, v1.1.9] // broken API\n)\n`;
    assert.equal((await publishZip(s, 'gomods', mod, 'v1.2.0', await moduleZip(mod, 'v1.2.0', { goMod }))).status, 201);
    const latest = JSON.parse((await text('/go/gomods/example.com/retracting/@latest', null)).body) as { Version: string };
    assert.equal(latest.Version, 'v1.0.0');
    assert.equal((await text('/go/gomods/example.com/retracting/@v/list', null)).body, 'v1.0.0\nv1.1.0\nv1.1.1\nv1.2.0\n', 'list still names them all');
  });
});

/** Patches the central-directory record of `name` to declare `size` uncompressed bytes (a lying zip). */
function declareSize(zip: Buffer, name: string, size: number): Buffer {
  const out = Buffer.from(zip);
  for (let i = 0; i < out.length - 46; i++) {
    if (out.readUInt32LE(i) !== 0x02014b50) continue;
    const n = out.readUInt16LE(i + 28);
    if (out.subarray(i + 46, i + 46 + n).toString() === name) {
      out.writeUInt32LE(size, i + 24);
      return out;
    }
  }
  throw new Error(`${name} not in zip`);
}

describe('bad zips are refused with the rule they break', () => {
  const mod = 'example.com/bad';
  const p = `${mod}@v1.0.0/`;
  const goMod: [string, string] = [`${p}go.mod`, `module ${mod}\n`];
  const cases: [string, () => Promise<Buffer>, RegExp][] = [
    ['../ escape', async () => renameEntry(await rawZip([goMod, [`${p}xx/xx/evil.go`, 'package evil\n']]), `${p}xx/xx/evil.go`, `${p}../../evil.go`), /evil.go: file path is not clean/],
    ['absolute escape', async () => renameEntry(await rawZip([goMod, ['xetc/passwd', 'x']]), 'xetc/passwd', '/etc/passwd'), /\/etc\/passwd: path does not have prefix/],
    ['wrong prefix', () => rawZip([goMod, [`example.com/other@v1.0.0/a.go`, 'package a\n']]), /does not have prefix "example.com\/bad@v1.0.0\/"/],
    ['mismatched module path', () => rawZip([[`${p}go.mod`, 'module example.com/elsewhere\n']]), /go.mod declares module path "example.com\/elsewhere"/],
    ['missing go.mod', () => rawZip([[`${p}a.go`, 'package a\n']]), /go.mod missing/],
    ['duplicate files', () => rawZip([goMod, [`${p}a.go`, 'package a\n'], [`${p}a.go`, 'package a // again\n']]), /multiple entries for file "a.go"/],
    ['case collision', () => rawZip([goMod, [`${p}Readme.md`, 'a'], [`${p}README.md`, 'b']]), /case-insensitive file name collision: "Readme.md" and "README.md"/],
    ['go.mod below the root', () => rawZip([goMod, [`${p}sub/go.mod`, 'module example.com/bad/sub\n']]), /go.mod file not in module root directory/],
    ['invalid file name', () => rawZip([goMod, [`${p}a:b.go`, 'package a\n']]), /malformed file path "a:b.go": invalid char ":"/],
    ['go.mod over 16 MiB', () => rawZip([[`${p}go.mod`, `module ${mod}\n` + '//'.padEnd(17 << 20, 'x') + '\n']]), /go.mod file too large \(max size is 16777216 bytes\)/],
    ['LICENSE over 16 MiB', () => rawZip([goMod, [`${p}LICENSE`, Buffer.alloc((16 << 20) + 1, 0x20)]]), /LICENSE file too large/],
    ['over 500 MiB declared', async () => declareSize(await rawZip([goMod, [`${p}big.bin`, 'tiny']]), `${p}big.bin`, 600 << 20), /total uncompressed size of module contents too large \(max size is 524288000 bytes\)/],
    ['declared size smaller than the content', async () => declareSize(await rawZip([goMod, [`${p}a.go`, 'package a // much longer than two bytes\n']]), `${p}a.go`, 2), /a.go: .*(too many bytes|size)/],
    ['not a zip', async () => Buffer.from('this is not a zip file at all, just text'), /not a valid zip file/],
  ];
  for (const [name, make, re] of cases) {
    it(name, async () => {
      const r = await publishZip(s, 'gomods', mod, 'v1.0.0', await make());
      assert.equal(r.status, 422, `${name}: ${r.status} ${r.text}`);
      assert.match(r.text, re);
      assert.match(r.text, /^invalid module zip for example.com\/bad@v1.0.0:/);
    });
  }
  it('left nothing published behind', async () => {
    assert.equal((await text('/go/gomods/example.com/bad/@v/list', null)).status, 404);
    assert.equal((await text('/go/gomods/example.com/bad/@v/v1.0.0.info', null)).status, 404);
    assert.equal((await text('/go/gomods/example.com/bad/@v/v1.0.0.mod', null)).status, 404);
    // …and a good zip for that version is still welcome.
    assert.equal((await publishZip(s, 'gomods', mod, 'v1.0.0', await moduleZip(mod, 'v1.0.0'))).status, 201);
  });
});

describe('permissions', () => {
  it('needs write access to publish and read access to private repositories', async () => {
    const zip = await moduleZip('example.com/perm', 'v1.0.0');
    const anon = await publishZip(s, 'gomods', 'example.com/perm', 'v1.0.0', zip, null);
    assert.equal(anon.status, 401);
    assert.match(anon.text, /authentication required/);
    assert.equal((await publishZip(s, 'gomods', 'example.com/perm', 'v1.0.0', zip, READER)).status, 403);
    assert.equal((await publishZip(s, 'private', 'example.com/perm', 'v1.0.0', zip)).status, 201);
    const anonRead = await get('/go/private/example.com/perm/@v/list', null);
    assert.equal(anonRead.status, 401);
    assert.match(anonRead.headers.get('www-authenticate') ?? '', /^Basic/);
    assert.equal((await get('/go/private/example.com/perm/@v/list')).status, 200);
  });

  it('refuses publishing to a group without writeMember and to non-zip paths', async () => {
    await s.services.repos.create({ name: 'nowrite', format: 'go', kind: 'group', members: ['gomods'] }, 'test');
    const r = await publishZip(s, 'nowrite', 'example.com/g', 'v1.0.0', await moduleZip('example.com/g', 'v1.0.0'));
    assert.equal(r.status, 405);
    const put = await s.fetch('/go/gomods/example.com/g/@v/v1.0.0.mod', { method: 'PUT', body: 'module example.com/g\n' });
    assert.equal(put.status, 405);
  });
});

describe('zip size cap', () => {
  it('stops an upload past the cap (min of 500 MiB and limits.uploadBytes) with 413, keeping nothing', async () => {
    const small = await startServer({ config: { limits: { uploadBytes: 4096 } } });
    try {
      await small.services.repos.create({ name: 'tiny', format: 'go', anonymousRead: true }, 'test');
      const mod = 'example.com/big';
      const zip = await moduleZip(mod, 'v1.0.0', { extra: [['blob.bin', randomBytes(8192)]] });
      const r = await publishZip(small, 'tiny', mod, 'v1.0.0', zip);
      assert.equal(r.status, 413, r.text);
      assert.equal((await small.fetch('/go/tiny/example.com/big/@v/list', { auth: null })).status, 404);
    } finally {
      await small.close();
    }
  });
});
