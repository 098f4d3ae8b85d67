/**
 * The auth matrix, over real HTTP: anonymous / users with roles / read-only token / admin × read, write,
 * delete, admin on two repositories; credentials as Bearer token, Basic password and Basic token;
 * revocation, expiry, disabled users, and the failed-login limit.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, basic, type TestServer } from '../helpers/server.ts';
import { AccountService } from '../../src/auth/accounts.ts';

type Act = 'read' | 'write' | 'delete' | 'admin';

describe('auth matrix', () => {
  let srv: TestServer;
  const tokens: Record<string, string> = {};

  before(async () => {
    srv = await startServer({ config: { auth: { failedLoginLimit: 10, failedLoginWindowSeconds: 60 } } });
    for (const name of ['one', 'two']) assert.equal((await srv.api('POST', '/repositories', { name, format: 'generic' })).status, 201);
    const users: [string, [string, Act][]][] = [
      ['reader', [['one', 'read']]],
      ['writer', [['one', 'write'], ['two', 'read']]],
      ['deleter', [['two', 'delete']]],
      ['owner', [['one', 'admin']]],
      ['everywhere', [['*', 'write']]],
      ['nobody', []],
    ];
    for (const [name, roles] of users) {
      assert.equal((await srv.api('POST', '/users', { name, password: `${name}-password` })).status, 201);
      for (const [repository, role] of roles) assert.equal((await srv.api('PUT', '/bindings', { user: name, repository, role })).status, 204);
      const t = await srv.api<{ token: string }>('POST', '/tokens', { user: name, name: 'test' });
      assert.equal(t.status, 201);
      tokens[name] = t.body.token;
    }
    const ro = await srv.api<{ token: string }>('POST', '/tokens', { user: 'writer', name: 'ro', readOnly: true });
    tokens.readonly = ro.body.token;
    // Seed one file in each repository for reads and deletes.
    for (const repo of ['one', 'two']) assert.equal((await srv.fetch(`/generic/${repo}/seed`, { method: 'PUT', body: 'x' })).status, 201);
  });
  after(() => srv.close());

  /** Performs `act` on `repo` with the given Authorization, returning the HTTP status. */
  async function attempt(act: Act, repo: string, auth: string | null): Promise<number> {
    const path = `/generic/${repo}/f-${act}-${Math.random().toString(36).slice(2)}`;
    switch (act) {
      case 'read':
        return (await srv.fetch(`/generic/${repo}/seed`, { auth })).status;
      case 'write':
        return (await srv.fetch(path, { method: 'PUT', body: 'data', auth })).status;
      case 'delete': {
        // Create as admin first so a refused delete is about permission, not absence.
        await srv.fetch(path, { method: 'PUT', body: 'doomed' });
        return (await srv.fetch(path, { method: 'DELETE', auth })).status;
      }
      case 'admin':
        return (
          await srv.fetch(`/api/v1/repositories/${repo}`, {
            method: 'PATCH',
            auth,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ anonymousRead: false }),
          })
        ).status;
    }
  }

  const OK: Record<Act, number> = { read: 200, write: 201, delete: 204, admin: 200 };
  // Expected outcome per principal, written out by hand: 'ok', 401 or 403.
  const expected: Record<string, Record<string, Record<Act, 'ok' | 401 | 403>>> = {
    anonymous: { one: { read: 401, write: 401, delete: 401, admin: 401 }, two: { read: 401, write: 401, delete: 401, admin: 401 } },
    reader: { one: { read: 'ok', write: 403, delete: 403, admin: 403 }, two: { read: 403, write: 403, delete: 403, admin: 403 } },
    writer: { one: { read: 'ok', write: 'ok', delete: 403, admin: 403 }, two: { read: 'ok', write: 403, delete: 403, admin: 403 } },
    deleter: { one: { read: 403, write: 403, delete: 403, admin: 403 }, two: { read: 'ok', write: 'ok', delete: 'ok', admin: 403 } },
    owner: { one: { read: 'ok', write: 'ok', delete: 'ok', admin: 'ok' }, two: { read: 403, write: 403, delete: 403, admin: 403 } },
    everywhere: { one: { read: 'ok', write: 'ok', delete: 403, admin: 403 }, two: { read: 'ok', write: 'ok', delete: 403, admin: 403 } },
    nobody: { one: { read: 403, write: 403, delete: 403, admin: 403 }, two: { read: 403, write: 403, delete: 403, admin: 403 } },
    readonly: { one: { read: 'ok', write: 403, delete: 403, admin: 403 }, two: { read: 'ok', write: 403, delete: 403, admin: 403 } },
    admin: { one: { read: 'ok', write: 'ok', delete: 'ok', admin: 'ok' }, two: { read: 'ok', write: 'ok', delete: 'ok', admin: 'ok' } },
  };

  for (const [who, repos] of Object.entries(expected)) {
    for (const [repo, acts] of Object.entries(repos)) {
      it(`${who} on ${repo}`, async () => {
        for (const [act, want] of Object.entries(acts) as [Act, 'ok' | 401 | 403][]) {
          const auths: (string | null)[] =
            who === 'anonymous' ? [null] : who === 'admin' ? [srv.config.auth.adminToken!] : who === 'readonly' ? [tokens.readonly, basic('writer', tokens.readonly)] : [tokens[who], basic(who, `${who}-password`), basic(who, tokens[who])];
          for (const auth of auths) {
            const got = await attempt(act, repo, auth);
            assert.equal(got, want === 'ok' ? OK[act] : want, `${who} ${act} ${repo} via ${auth?.split(' ')[0] ?? 'none'}`);
          }
        }
      });
    }
  }

  it('401 carries a challenge; 403 does not', async () => {
    const r = await srv.fetch('/generic/one/seed', { auth: null });
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Basic realm="Granary"/);
    const body = (await r.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'UNAUTHORIZED');
    const f = await srv.fetch('/generic/two/seed', { auth: tokens.reader });
    assert.equal(f.status, 403);
    assert.equal(((await f.json()) as { error: { code: string } }).error.code, 'DENIED');
  });

  it('an unknown repository looks the same as a private one to anonymous callers', async () => {
    assert.equal((await srv.fetch('/generic/nope/x', { auth: null })).status, 401);
    assert.equal((await srv.fetch('/generic/nope/x', { auth: tokens.reader })).status, 404);
  });

  it('anonymous read, when the repository allows it, grants read only', async () => {
    assert.equal((await srv.api('POST', '/repositories', { name: 'open', format: 'generic', anonymousRead: true })).status, 201);
    assert.equal((await srv.fetch('/generic/open/f', { method: 'PUT', body: 'public' })).status, 201);
    assert.equal((await srv.fetch('/generic/open/f', { auth: null })).status, 200);
    assert.equal((await srv.fetch('/generic/open/g', { method: 'PUT', body: 'x', auth: null })).status, 401);
    assert.equal((await srv.fetch('/generic/open/f', { method: 'DELETE', auth: null })).status, 401);
  });

  it('a revoked token stops working at once', async () => {
    const t = await srv.api<{ token: string; info: { id: string } }>('POST', '/tokens', { user: 'writer', name: 'short-lived' });
    assert.equal((await srv.fetch('/generic/one/seed', { auth: t.body.token })).status, 200);
    // The owner may revoke their own token with that same token.
    assert.equal((await srv.api('DELETE', `/tokens/${t.body.info.id}`, undefined, t.body.token)).status, 204);
    const r = await srv.fetch('/generic/one/seed', { auth: t.body.token });
    assert.equal(r.status, 401);
    assert.match(((await r.json()) as { error: { message: string } }).error.message, /revoked/);
    assert.equal((await srv.fetch('/generic/one/seed', { auth: basic('writer', t.body.token) })).status, 401);
  });

  it('a revoke made by another process takes effect after one poll of the event log', async () => {
    const t = await srv.api<{ token: string; info: { id: string } }>('POST', '/tokens', { user: 'writer', name: 'elsewhere' });
    assert.equal((await srv.fetch('/generic/one/seed', { auth: t.body.token })).status, 200); // now cached
    // Another process on the same database: its changes reach this server only through the event log.
    const other = new AccountService(srv.services.meta);
    await other.revokeToken(t.body.info.id, 'elsewhere');
    await srv.services.changes.poll();
    assert.equal((await srv.fetch('/generic/one/seed', { auth: t.body.token })).status, 401);
    await other.grant({ user: 'nobody', repository: 'one', role: 'read' }, 'elsewhere');
    await srv.services.changes.poll();
    assert.equal((await srv.fetch('/generic/one/seed', { auth: tokens.nobody })).status, 200);
    await other.revoke({ user: 'nobody', repository: 'one' }, 'elsewhere');
    await srv.services.changes.poll();
    assert.equal((await srv.fetch('/generic/one/seed', { auth: tokens.nobody })).status, 403);
  });

  it('a user cannot revoke or list another user\'s tokens; an admin can', async () => {
    const mine = await srv.api<{ tokens: { id: string; user: string }[] }>('GET', '/tokens', undefined, tokens.reader);
    assert.equal(mine.status, 200);
    assert.ok(mine.body.tokens.every((t) => t.user === 'reader'));
    assert.ok(!JSON.stringify(mine.body).includes('gra_'), 'token listings never carry secrets');
    const others = await srv.api<{ tokens: { id: string }[] }>('GET', '/tokens?user=writer');
    assert.equal((await srv.api('GET', '/tokens?user=writer', undefined, tokens.reader)).status, 403);
    assert.equal((await srv.api('DELETE', `/tokens/${others.body.tokens[0].id}`, undefined, tokens.reader)).status, 404);
  });

  it('an expired token is refused', async () => {
    const t = await srv.api<{ token: string; info: { id: string } }>('POST', '/tokens', { user: 'writer', name: 'old', expiresInDays: 1 });
    await srv.services.meta.db.updateTable('tokens').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', t.body.info.id).execute();
    const r = await srv.fetch('/generic/one/seed', { auth: t.body.token });
    assert.equal(r.status, 401);
    assert.match(((await r.json()) as { error: { message: string } }).error.message, /expired/);
  });

  it('a disabled user is refused with every credential', async () => {
    await srv.api('POST', '/users', { name: 'leaver', password: 'leaver-password' });
    await srv.api('PUT', '/bindings', { user: 'leaver', repository: 'one', role: 'read' });
    const t = await srv.api<{ token: string }>('POST', '/tokens', { user: 'leaver', name: 't' });
    assert.equal((await srv.fetch('/generic/one/seed', { auth: t.body.token })).status, 200);
    assert.equal((await srv.api('PATCH', '/users/leaver', { disabled: true })).status, 200);
    assert.equal((await srv.fetch('/generic/one/seed', { auth: t.body.token })).status, 401);
    assert.equal((await srv.fetch('/generic/one/seed', { auth: basic('leaver', 'leaver-password') })).status, 401);
  });

  it('only admins manage users, bindings and repositories', async () => {
    assert.equal((await srv.api('POST', '/users', { name: 'eve', password: 'eve-password' }, tokens.owner)).status, 403);
    assert.equal((await srv.api('PUT', '/bindings', { user: 'nobody', repository: 'one', role: 'admin' }, tokens.owner)).status, 403);
    assert.equal((await srv.api('POST', '/repositories', { name: 'mine', format: 'generic' }, tokens.writer)).status, 403);
    assert.equal((await srv.api('DELETE', '/repositories/one', undefined, tokens.owner)).status, 403);
    assert.equal((await srv.api('GET', '/users', undefined, null)).status, 401);
  });

  it('repository listing shows only what the caller may read', async () => {
    const names = async (auth: string | null) =>
      (await srv.api<{ repositories: { name: string }[] }>('GET', '/repositories', undefined, auth)).body.repositories.map((r) => r.name).sort();
    assert.deepEqual(await names(tokens.reader), ['one', 'open']);
    assert.deepEqual(await names(tokens.deleter), ['open', 'two']);
    assert.deepEqual(await names(null), ['open']);
  });

  it('failed logins are limited per user and address, and a correct password does not bypass the limit', async () => {
    await srv.api('POST', '/users', { name: 'target', password: 'target-password' });
    await srv.api('PUT', '/bindings', { user: 'target', repository: 'one', role: 'read' });
    for (let i = 0; i < 10; i++) assert.equal((await srv.fetch('/generic/one/seed', { auth: basic('target', `wrong-guess-${i}`) })).status, 401);
    const limited = await srv.fetch('/generic/one/seed', { auth: basic('target', 'target-password') });
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
    // Other users are unaffected.
    assert.equal((await srv.fetch('/generic/one/seed', { auth: basic('reader', 'reader-password') })).status, 200);
  });

  it('malformed credentials are a clean 401', async () => {
    for (const h of ['Basic !!!', 'Basic ' + Buffer.from('nocolon').toString('base64'), 'Bearer ', 'Digest abc', 'Bearer gra_notatoken']) {
      const r = await srv.fetch('/generic/one/seed', { auth: h });
      assert.equal(r.status, 401, h);
    }
  });
});
