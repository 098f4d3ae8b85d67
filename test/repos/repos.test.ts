/**
 * The repository model: validation (format, kind, name, upstream, group members and cycles) and group
 * behaviour over real HTTP (read order, writes to the writeMember, no leak of unreadable members).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import { validateRepository } from '../../src/repos/validate.ts';
import type { FormatPlugin } from '../../src/formats/types.ts';
import type { RepositoryRecord } from '../../src/meta/repos.ts';
import { GranaryError } from '../../src/server/errors.ts';
import { request } from 'node:http';
import { startServer, type TestServer } from '../helpers/server.ts';

function rawPut(base: string, path: string, token: string): Promise<number> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method: 'PUT', path, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject);
    req.end('x');
  });
}

const fakeFormat: FormatPlugin = {
  name: 'fake',
  contract: 1,
  kinds: ['hosted', 'proxy', 'group'],
  optionsSchema: Type.Object({ immutable: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
  register: async () => {},
};

function rec(name: string, kind: RepositoryRecord['kind'], config: RepositoryRecord['config'] = {}, format = 'fake'): RepositoryRecord {
  return { id: 0, name, format, kind, anonymousRead: false, config, createdAt: '', updatedAt: '' };
}

function fieldOf(fn: () => void): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof GranaryError, String(e));
    return (e.details as { field: string }).field;
  }
  assert.fail('expected a validation error');
}

describe('repository validation', () => {
  const existing = new Map<string, RepositoryRecord>([
    ['h1', rec('h1', 'hosted')],
    ['h2', rec('h2', 'hosted')],
    ['p1', rec('p1', 'proxy', { upstream: 'https://example.invalid' })],
    ['g1', rec('g1', 'group', { members: ['h1', 'g2'] })],
    ['g2', rec('g2', 'group', { members: ['h2'] })],
    ['other', rec('other', 'hosted', {}, 'generic')],
  ]);
  const lookup = (n: string) => existing.get(n);
  const check = (r: RepositoryRecord, f: FormatPlugin | undefined = fakeFormat) => () => validateRepository(r, f, lookup);

  it('accepts valid hosted, proxy and group definitions', () => {
    check(rec('new', 'hosted'))();
    check(rec('new', 'proxy', { upstream: 'http://127.0.0.1:5000/' }))();
    check(rec('new', 'group', { members: ['h1', 'p1', 'g1'], writeMember: 'h1' }))();
    check(rec('new', 'hosted', { options: { immutable: true } }))();
  });

  it('names the field at fault', () => {
    assert.equal(fieldOf(check(rec('Bad Name', 'hosted'))), 'name');
    assert.equal(fieldOf(check(rec('../x', 'hosted'))), 'name');
    assert.equal(fieldOf(check(rec('api', 'hosted'))), 'name');
    assert.equal(fieldOf(() => validateRepository(rec('x', 'hosted'), undefined, lookup)), 'format');
    assert.equal(fieldOf(check(rec('x', 'proxy'))), 'upstream');
    assert.equal(fieldOf(check(rec('x', 'proxy', { upstream: 'not a url' }))), 'upstream');
    assert.equal(fieldOf(check(rec('x', 'proxy', { upstream: 'ftp://host/' }))), 'upstream');
    assert.equal(fieldOf(check(rec('x', 'proxy', { upstream: 'https://u:p@host/' }))), 'upstream');
    assert.equal(fieldOf(check(rec('x', 'hosted', { upstream: 'https://host/' }))), 'upstream');
    assert.equal(fieldOf(check(rec('x', 'hosted', { members: ['h1'] }))), 'members');
    assert.equal(fieldOf(check(rec('x', 'group', { members: [] }))), 'members');
    assert.equal(fieldOf(check(rec('x', 'group', { members: ['missing'] }))), 'members');
    assert.equal(fieldOf(check(rec('x', 'group', { members: ['other'] }))), 'members');
    assert.equal(fieldOf(check(rec('x', 'group', { members: ['h1', 'h1'] }))), 'members');
    assert.equal(fieldOf(check(rec('x', 'group', { members: ['h1'], writeMember: 'h2' }))), 'writeMember');
    assert.equal(fieldOf(check(rec('x', 'group', { members: ['h1', 'p1'], writeMember: 'p1' }))), 'writeMember');
    assert.equal(fieldOf(check(rec('x', 'hosted', { options: { immutable: 'yes' } }))), 'options.immutable');
    assert.equal(fieldOf(check(rec('x', 'hosted', { options: { nope: 1 } }))), 'options.nope');
  });

  it('rejects a format that does not support the kind', () => {
    const hostedOnly = { ...fakeFormat, kinds: ['hosted'] as const };
    assert.equal(fieldOf(check(rec('x', 'proxy', { upstream: 'https://h/' }), hostedOnly)), 'kind');
  });

  it('rejects group cycles, direct and through nested groups', () => {
    assert.equal(fieldOf(check(rec('g2', 'group', { members: ['g1'] }))), 'members'); // g2 → g1 → g2
    assert.equal(fieldOf(check(rec('g1', 'group', { members: ['g1'] }))), 'members');
    assert.match(String((() => { try { check(rec('g2', 'group', { members: ['g1'] }))(); } catch (e) { return (e as Error).message; } })()), /cycle: g2 → g1 → g2/);
  });
});

describe('groups over HTTP', () => {
  let srv: TestServer;
  let bobToken: string;
  before(async () => {
    srv = await startServer();
    for (const name of ['first', 'second', 'secret']) await srv.api('POST', '/repositories', { name, format: 'generic' });
    await srv.api('POST', '/repositories', { name: 'inner', format: 'generic', kind: 'group', members: ['secret', 'second'] });
    const g = await srv.api('POST', '/repositories', { name: 'all', format: 'generic', kind: 'group', members: ['first', 'inner'], writeMember: 'first' });
    assert.equal(g.status, 201);
    await srv.fetch('/generic/first/shared', { method: 'PUT', body: 'from first' });
    await srv.fetch('/generic/second/shared', { method: 'PUT', body: 'from second' });
    await srv.fetch('/generic/second/only-second', { method: 'PUT', body: 'second only' });
    await srv.fetch('/generic/secret/only-secret', { method: 'PUT', body: 'classified' });
    await srv.fetch('/generic/secret/only-second', { method: 'PUT', body: 'secret shadow' });
    await srv.api('POST', '/users', { name: 'bob' });
    for (const r of ['all', 'first', 'second', 'inner']) await srv.api('PUT', '/bindings', { user: 'bob', repository: r, role: r === 'all' || r === 'first' ? 'write' : 'read' });
    bobToken = (await srv.api<{ token: string }>('POST', '/tokens', { user: 'bob', name: 't' })).body.token;
  });
  after(() => srv.close());

  it('reads from the first member that has the path, depth-first', async () => {
    assert.equal(await (await srv.fetch('/generic/all/shared')).text(), 'from first');
    assert.equal(await (await srv.fetch('/generic/all/only-second')).text(), 'secret shadow'); // inner = [secret, second]
    assert.equal(await (await srv.fetch('/generic/all/only-secret')).text(), 'classified');
  });

  it('skips members the caller may not read', async () => {
    assert.equal(await (await srv.fetch('/generic/all/only-second', { auth: bobToken })).text(), 'second only');
    assert.equal((await srv.fetch('/generic/all/only-secret', { auth: bobToken })).status, 404);
  });

  it('sends writes to the writeMember, needing write there too', async () => {
    const r = await srv.fetch('/generic/all/new-file', { method: 'PUT', body: 'via group', auth: bobToken });
    assert.equal(r.status, 201);
    assert.equal(r.headers.get('location'), '/generic/first/new-file');
    assert.equal(await (await srv.fetch('/generic/first/new-file')).text(), 'via group');
    const noWriter = await srv.fetch('/generic/inner/x', { method: 'PUT', body: 'nope' });
    assert.equal(noWriter.status, 405);
    assert.match(((await noWriter.json()) as { error: { message: string } }).error.message, /no writeMember/);
  });

  it('refuses to delete a repository that a group still names, and cycles through the API', async () => {
    const r = await srv.api('DELETE', '/repositories/second');
    assert.equal(r.status, 409);
    const cyc = await srv.api('PATCH', '/repositories/inner', { members: ['secret', 'all'] });
    assert.equal(cyc.status, 400);
    assert.match((cyc.body as { error: { message: string } }).error.message, /cycle/);
  });
});

describe('generic format HTTP semantics', () => {
  let srv: TestServer;
  const body = Buffer.from('0123456789abcdefghij');
  let digest: string;
  before(async () => {
    srv = await startServer();
    await srv.api('POST', '/repositories', { name: 'g', format: 'generic' });
    const r = await srv.fetch('/generic/g/dir/file.bin', { method: 'PUT', body, headers: { 'content-type': 'application/x-thing' } });
    assert.equal(r.status, 201);
    digest = ((await r.json()) as { digest: string }).digest;
  });
  after(() => srv.close());

  it('serves ranges, ETag and conditional requests', async () => {
    const full = await srv.fetch('/generic/g/dir/file.bin');
    assert.equal(full.headers.get('etag'), `"${digest}"`);
    assert.equal(full.headers.get('content-type'), 'application/x-thing');
    const part = await srv.fetch('/generic/g/dir/file.bin', { headers: { range: 'bytes=5-9' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), 'bytes 5-9/20');
    assert.equal(await part.text(), '56789');
    const suffix = await srv.fetch('/generic/g/dir/file.bin', { headers: { range: 'bytes=-3' } });
    assert.equal(await suffix.text(), 'hij');
    const bad = await srv.fetch('/generic/g/dir/file.bin', { headers: { range: 'bytes=50-' } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers.get('content-range'), 'bytes */20');
    const cached = await srv.fetch('/generic/g/dir/file.bin', { headers: { 'if-none-match': `"${digest}"` } });
    assert.equal(cached.status, 304);
    const head = await srv.fetch('/generic/g/dir/file.bin', { method: 'HEAD' });
    assert.equal(head.headers.get('content-length'), '20');
  });

  it('verifies a declared digest and keeps nothing on mismatch', async () => {
    const wrong = 'sha256:' + '0'.repeat(64);
    const r = await srv.fetch(`/generic/g/checked?digest=${wrong}`, { method: 'PUT', body: 'abc' });
    assert.equal(r.status, 400);
    assert.equal((await srv.fetch('/generic/g/checked')).status, 404);
    const sha = await srv.fetch('/generic/g/checked', { method: 'PUT', body: 'abc', headers: { 'x-checksum-sha256': 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad' } });
    assert.equal(sha.status, 201);
  });

  it('refuses path traversal and odd segments', async () => {
    // Raw requests: fetch would normalise the dot segments away before they reach the server.
    for (const p of ['/generic/g/a/../b', '/generic/g/a/%2e%2e/b', '/generic/g/a//b', '/generic/g/a/./b', '/generic/g/a%5Cb', '/generic/g/..%2f..%2fetc']) {
      const status = await rawPut(srv.url, p, srv.config.auth.adminToken!);
      assert.equal(status, 400, `${p} → ${status}`);
    }
    assert.equal((await srv.api<{ assets: unknown[] }>('GET', '/repositories/g/assets')).body.assets.length, 2);
  });

  it('lists and searches assets by prefix and digest', async () => {
    const r = await srv.api<{ assets: { path: string; digest: string }[] }>('GET', '/repositories/g/assets?prefix=dir/');
    assert.deepEqual(r.body.assets.map((a) => a.path), ['dir/file.bin']);
    const s = await srv.api<{ assets: { repository: string; path: string }[] }>('GET', `/assets?digest=${digest}`);
    assert.deepEqual(s.body.assets.map((a) => `${a.repository}/${a.path}`), ['g/dir/file.bin']);
  });

  it('deletes, then 404', async () => {
    assert.equal((await srv.fetch('/generic/g/dir/file.bin', { method: 'DELETE' })).status, 204);
    assert.equal((await srv.fetch('/generic/g/dir/file.bin')).status, 404);
    assert.equal((await srv.fetch('/generic/g/dir/file.bin', { method: 'DELETE' })).status, 404);
  });
});
