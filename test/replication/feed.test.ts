/**
 * The primary's signed feed and an in-process replica following it over loopback: who may read the feed, what
 * pages carry (and never carry), page signatures and the hash chain across pages, long-polling, convergence of
 * the state checksum, deletes and tags, and writes refused on the replica with a message naming the primary.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, startServer, type TestServer } from '../helpers/server.ts';
import { withTx } from '../../src/meta/db.ts';
import { setTag } from '../../src/meta/tags.ts';
import { verifierFromPem } from '../../src/replication/keys.ts';
import { verifyPage } from '../../src/replication/verify.ts';
import { START } from '../../src/replication/position.ts';
import type { FeedPage } from '../../src/replication/feed-format.ts';
import { getJson, savePublicKey, until, noKeepAlive } from './helpers.ts';

noKeepAlive();

let work: string;
let primary: TestServer;
let replica: TestServer;
let repToken: string;
let devToken: string;
let keyPath: string;
const extra: TestServer[] = [];

const feed = (since: number, token: string | null, extra = '') => getJson<FeedPage>(`${primary.url}/api/v1/replication/feed?since=${since}${extra}`, token);
const state = async (s: TestServer) => (await getJson<{ checksum: string; assets: number; tags: number }>(`${s.url}/api/v1/replication/state`, ADMIN_TOKEN)).body;

async function put(path: string, body: string, headers: Record<string, string> = {}) {
  const res = await primary.fetch(`/generic/files/${path}`, { method: 'PUT', body, headers });
  assert.ok(res.status === 201 || res.status === 200, `PUT ${path}: ${res.status} ${await res.text()}`);
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'granary-repl-feed-'));
  primary = await startServer();
  await primary.services.repos.create({ name: 'files', format: 'generic', anonymousRead: false }, 'test');
  const { accounts } = primary.services;
  await accounts.addUser({ name: 'rep' }, 'test');
  await accounts.grant({ user: 'rep', repository: '*', role: 'read' }, 'test');
  repToken = (await accounts.createToken({ user: 'rep', name: 'replica', readOnly: true }, 'test')).token;
  await accounts.addUser({ name: 'dev' }, 'test');
  await accounts.grant({ user: 'dev', repository: 'files', role: 'write' }, 'test');
  devToken = (await accounts.createToken({ user: 'dev', name: 'dev' }, 'test')).token;
  keyPath = await savePublicKey(primary.url, ADMIN_TOKEN, work);
});
after(async () => {
  for (const s of extra) await s.close();
  await replica?.close();
  await primary?.close();
  await rm(work, { recursive: true, force: true });
});

describe('replication feed', () => {
  it('is for admins and replica users (a role on "*") only', async () => {
    assert.equal((await feed(0, null)).status, 401);
    const dev = await feed(0, devToken);
    assert.equal(dev.status, 403);
    assert.match(JSON.stringify(dev.body), /role on every repository/);
    assert.equal((await feed(0, repToken)).status, 200);
    assert.equal((await feed(0, ADMIN_TOKEN)).status, 200);
  });

  it('signs each page head, chains pages, and ships content events with their metadata but no accounts', async () => {
    await put('app/1.0/a.bin', 'alpha', { 'x-granary-meta-channel': 'stable' });
    await put('app/1.0/b.bin', 'beta');
    const key = verifierFromPem(await readFile(keyPath, 'utf8'), keyPath);
    const all = (await feed(0, repToken)).body;
    const kinds = all.events.map((e) => e.kind);
    assert.ok(kinds.includes('repository.created') && kinds.includes('asset.put'), kinds.join());
    assert.ok(!kinds.some((k) => /^(user|token|binding)\./.test(k)), `accounts leaked: ${kinds.join()}`);
    assert.ok(all.head.to >= all.events.at(-1)!.seq && all.head.from === 0);
    const a = all.events.find((e) => e.path === 'app/1.0/a.bin')!;
    assert.equal((a.data as { metadata: Record<string, unknown> }).metadata.channel, 'stable');
    const whole = verifyPage(all, START, key);
    assert.equal(whole.kind, 'apply');

    // The same history in pages of two events: each verifies against the position the previous one left.
    let pos = START;
    for (;;) {
      const page = (await feed(pos.seq, repToken, '&limit=2')).body;
      const v = verifyPage(page, pos, key);
      assert.equal(v.kind, 'apply');
      if (v.kind !== 'apply' || v.to.seq === pos.seq) break;
      pos = v.to;
    }
    assert.deepEqual(pos, whole.kind === 'apply' ? whole.to : null, 'paging ends on the same chain value');
  });

  it('answers a long poll as soon as an event arrives', async () => {
    const latest = (await feed(0, repToken)).body.head.latest;
    const waiting = feed(latest, repToken, '&wait=15');
    await new Promise((r) => setTimeout(r, 300));
    await put('app/1.0/c.bin', 'gamma');
    const page = (await waiting).body;
    assert.equal(page.head.from, latest);
    assert.deepEqual(
      page.events.map((e) => e.path),
      ['app/1.0/c.bin'],
    );
  });

  it('refuses a reader that is ahead of the log (409)', async () => {
    const r = await feed(1_000_000, repToken);
    assert.equal(r.status, 409);
    assert.match(JSON.stringify(r.body), /ahead of this primary/);
  });
});

describe('an in-process replica', () => {
  before(async () => {
    replica = await startServer({ config: { replication: { replicaOf: [primary.url], primaryKey: keyPath, token: repToken, waitSeconds: 2 } } });
  });

  it('converges to the primary state, bytes included', async () => {
    const want = await state(primary);
    await until('replica state = primary state', async () => ((await state(replica)).checksum === want.checksum ? true : undefined));
    const res = await replica.fetch('/generic/files/app/1.0/a.bin');
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'alpha');
    assert.equal(res.headers.get('x-granary-meta-channel'), 'stable');
  });

  // OCI pushes to a replica (skopeo) are refused in processes.test.ts.
  it('refuses writes and deletes with a message naming the primary, and repository changes', async () => {
    const put = await replica.fetch('/generic/files/app/2.0/x.bin', { method: 'PUT', body: 'nope' });
    assert.equal(put.status, 403);
    const body = (await put.json()) as { error: { message: string } };
    assert.match(body.error.message, /read-only replica/);
    assert.ok(body.error.message.includes(primary.url), body.error.message);
    const del = await replica.fetch('/generic/files/app/1.0/a.bin', { method: 'DELETE' });
    assert.equal(del.status, 403);
    // With a token of the primary (tokens are not replicated): still where to push, not "invalid token".
    const foreign = await replica.fetch('/generic/files/app/2.0/x.bin', { method: 'PUT', body: 'nope', auth: 'gra_a-token-only-the-primary-knows' });
    assert.equal(foreign.status, 403);
    assert.match(((await foreign.json()) as { error: { message: string } }).error.message, /read-only replica/);
    const created = await replica.api('POST', '/repositories', { name: 'local', format: 'generic' });
    assert.equal(created.status, 403);
    assert.equal((await replica.api('GET', '/repositories')).status, 200, 'reads still work');
    assert.equal((await replica.api('GET', '/users')).status, 200, 'local account listing still works');
  });

  it('follows deletes, tags and trusted keys', async () => {
    const pem = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    assert.equal((await primary.api('PUT', '/repositories/files/keys/release', { publicKey: pem })).status, 201);
    const del = await primary.fetch('/generic/files/app/1.0/b.bin', { method: 'DELETE' });
    assert.ok(del.status === 200 || del.status === 204, String(del.status));
    const repo = (await primary.services.repos.get('files'))!;
    const digest = (await primary.api<{ assets: { digest: string }[] }>('GET', '/repositories/files/assets?prefix=app/1.0/a.bin')).body.assets[0].digest;
    await withTx(primary.services.meta.db, (tx) => setTag(tx, repo, 'app', 'stable', digest, 'test'));
    const want = await state(primary);
    assert.equal(want.tags, 1);
    await until('replica state after delete + tag', async () => ((await state(replica)).checksum === want.checksum ? true : undefined));
    assert.equal((await replica.fetch('/generic/files/app/1.0/b.bin')).status, 404);
    const keys = await replica.api<{ keys: { id: string; publicKey: string }[] }>('GET', '/repositories/files/keys');
    assert.deepEqual(keys.body.keys.map((k) => [k.id, k.publicKey.trim()]), [['release', pem.trim()]]);
    const status = await getJson<{ role: string; lag: number; lastContact: string; ok: boolean }>(`${replica.url}/api/v1/replication/status`, ADMIN_TOKEN);
    assert.equal(status.body.role, 'replica');
    assert.equal(status.body.ok, true);
    assert.equal(status.body.lag, 0);
    assert.ok(status.body.lastContact);
    const ready = await getJson<{ status: string; checks: { replication: { lag: number; lastContact: string } } }>(`${replica.url}/readyz`, null);
    assert.equal(ready.status, 200);
    assert.ok('lastContact' in ready.body.checks.replication, JSON.stringify(ready.body));
  });

  it('refuses to start without a usable primary key or with a source that is not a URL', async () => {
    const dataDir = join(work, 'bad-config');
    await assert.rejects(startServer({ dataDir, config: { replication: { replicaOf: [primary.url] } } }), /replication\.primaryKey: a replica needs/);
    await assert.rejects(startServer({ dataDir, config: { replication: { replicaOf: ['ftp:/x'], primaryKey: keyPath } } }), /replication\.replicaOf: "ftp:\/x" is not an http\(s\) URL/);
    await assert.rejects(startServer({ dataDir, config: { replication: { replicaOf: [primary.url], primaryKey: join(work, 'missing.pem') } } }), /cannot read/);
  });

  it('replicates only the repositories its scope names', async () => {
    await primary.services.repos.create({ name: 'team-a', format: 'generic' }, 'test');
    assert.equal((await primary.fetch('/generic/team-a/x.txt', { method: 'PUT', body: 'x' })).status, 201);
    const scoped = await startServer({
      config: { replication: { replicaOf: [primary.url], primaryKey: keyPath, token: repToken, waitSeconds: 2, repositories: ['team-*'] } },
    });
    // Closed in `after`, with the others.
    extra.push(scoped);
    const want = await getJson<{ checksum: string }>(`${primary.url}/api/v1/replication/state?repositories=team-*`, ADMIN_TOKEN);
    await until('the scoped replica', async () => ((await getJson<{ checksum: string }>(`${scoped.url}/api/v1/replication/state`, ADMIN_TOKEN)).body.checksum === want.body.checksum ? true : undefined));
    assert.deepEqual((await scoped.api<{ repositories: { name: string }[] }>('GET', '/repositories')).body.repositories.map((r) => r.name), ['team-a']);
    assert.equal(await (await scoped.fetch('/generic/team-a/x.txt')).text(), 'x');
  });
});
