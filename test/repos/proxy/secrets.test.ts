/**
 * Upstream credentials written inline into a proxy repository never come back out of the management API — not to
 * anonymous readers of an anonymous-read repository, not to admins — and a read-modify-write that sends the
 * "***" placeholders back keeps the stored secrets instead of saving the placeholder. The event log never holds
 * them either. Credentials in the upstream URL itself are refused at create time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../../helpers/server.ts';

const PASSWORD = 'upstream-pa55word-do-not-leak';

describe('proxy repository secrets in the API', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
    const created = await s.api('POST', '/repositories', {
      name: 'mirror',
      format: 'oci',
      kind: 'proxy',
      anonymousRead: true,
      upstream: 'https://registry.example.com/',
      options: { proxy: { auth: { type: 'basic', username: 'robot', password: PASSWORD }, metadataTtlSeconds: 60 } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.ok(!JSON.stringify(created.body).includes(PASSWORD), 'the create answer shows the password');
    const inUrl = await s.api<{ error: { message: string } }>('POST', '/repositories', { name: 'bad', format: 'oci', kind: 'proxy', upstream: 'https://robot:secret@registry.example.com/' });
    assert.equal(inUrl.status, 400);
    assert.match(inUrl.body.error.message, /credentials/);
  });
  after(() => s?.close());

  it('shows neither the inline password nor URL credentials, to anonymous callers or admins', async () => {
    for (const auth of [null, undefined]) {
      const list = await s.api<{ repositories: { name: string; upstream?: string; options?: { proxy?: { auth?: Record<string, unknown> } } }[] }>('GET', '/repositories', undefined, auth);
      assert.equal(list.status, 200);
      const text = JSON.stringify(list.body);
      assert.ok(!text.includes(PASSWORD), `secret shown to ${auth === null ? 'anonymous' : 'admin'}: ${text}`);
      const mirror = list.body.repositories.find((r) => r.name === 'mirror')!;
      assert.equal(mirror.options?.proxy?.auth?.password, '***');
      assert.equal(mirror.options?.proxy?.auth?.username, 'robot', 'non-secret fields stay visible');
    }
    const one = await s.api('GET', '/repositories/mirror', undefined, null);
    assert.equal(one.status, 200);
    assert.ok(!JSON.stringify(one.body).includes(PASSWORD));
  });

  it('keeps inline secrets out of the event log', async () => {
    const events = await s.api<{ events: { kind: string; data: unknown }[] }>('GET', '/events?repository=mirror');
    assert.equal(events.status, 200);
    assert.ok(events.body.events.some((e) => e.kind === 'repository.created'));
    assert.ok(!JSON.stringify(events.body).includes(PASSWORD), JSON.stringify(events.body));
  });

  it('keeps the stored secrets when the placeholders are sent back, and takes new ones', async () => {
    const got = await s.api<{ options: Record<string, unknown> }>('GET', '/repositories/mirror');
    const options = structuredClone(got.body.options) as { proxy: { metadataTtlSeconds: number } };
    options.proxy.metadataTtlSeconds = 120;
    const patched = await s.api('PATCH', '/repositories/mirror', { options });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    let stored = (await s.services.repos.get('mirror'))!.config;
    assert.deepEqual(stored.options?.proxy, { auth: { type: 'basic', username: 'robot', password: PASSWORD }, metadataTtlSeconds: 120 });

    const rotated = await s.api('PATCH', '/repositories/mirror', { options: { proxy: { auth: { type: 'basic', username: 'robot', password: 'new-secret-value' } } } });
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    assert.ok(!JSON.stringify((await s.api('GET', '/events?repository=mirror')).body).includes('new-secret-value'), 'an update event carries the new secret');
    stored = (await s.services.repos.get('mirror'))!.config;
    assert.equal((stored.options?.proxy as { auth: { password: string } }).auth.password, 'new-secret-value');
  });
});
