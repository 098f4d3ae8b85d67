/**
 * `granary replica promote`: a running replica stops following and takes writes; its feed is signed with a new
 * key in a later epoch. A replica given the new key follows it (re-reading the new feed from its start when it
 * had followed the old primary), and refuses the old primary's feed — the old feed is fenced.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, startServer, type TestServer } from '../helpers/server.ts';
import { runGranary } from '../helpers/cli.ts';
import { getJson, savePublicKey, until, noKeepAlive } from './helpers.ts';

noKeepAlive();

let work: string;
let P: TestServer;
let R: TestServer;
const others: TestServer[] = [];
let oldKey: string;
let newKey: string;

const state = async (s: TestServer) => (await getJson<{ checksum: string }>(`${s.url}/api/v1/replication/state`, ADMIN_TOKEN)).body.checksum;
const status = async (s: TestServer) =>
  (await getJson<{ role: string; epoch: number; follower: { refused: { reason: string } | null } | null }>(`${s.url}/api/v1/replication/status`, ADMIN_TOKEN)).body;
const replicaOf = (url: string, key: string, dataDir?: string) =>
  startServer({ dataDir, config: { replication: { replicaOf: [url], primaryKey: key, token: ADMIN_TOKEN, waitSeconds: 1 } } });
async function converge(s: TestServer, to: TestServer) {
  const want = await state(to);
  await until(`state of ${s.url}`, async () => ((await state(s)) === want ? true : undefined));
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'granary-repl-promote-'));
  P = await startServer();
  await P.services.repos.create({ name: 'files', format: 'generic' }, 'test');
  assert.equal((await P.fetch('/generic/files/a.txt', { method: 'PUT', body: 'a' })).status, 201);
  oldKey = await savePublicKey(P.url, ADMIN_TOKEN, work, 'old.pub.pem');
  R = await replicaOf(P.url, oldKey);
  await converge(R, P);
});
after(async () => {
  for (const s of others) await s.close();
  await R?.close();
  await P?.close();
  await rm(work, { recursive: true, force: true });
});

describe('replica promote', () => {
  it('turns a running replica into a primary with a new key and epoch', async () => {
    const before = await status(R);
    assert.equal(before.role, 'replica');
    // The CLI works on the replica's database: its data dir, or the PostgreSQL database the test gave it.
    const db = R.config.database;
    const env: Record<string, string> = db.driver === 'postgres' ? { GRANARY_DATABASE_DRIVER: 'postgres', GRANARY_DATABASE_URL: db.url! } : {};
    const run = await runGranary(['replica', 'promote', '--data-dir', R.dataDir, '--json'], { cwd: work, env });
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { epoch: number; publicKey: string };
    assert.equal(out.epoch, 2);
    newKey = join(work, 'new.pub.pem');
    await writeFile(newKey, out.publicKey);
    await until('the replica to notice', async () => ((await status(R)).role === 'primary' ? true : undefined));
    assert.equal((await R.fetch('/generic/files/b.txt', { method: 'PUT', body: 'b' })).status, 201, 'writes are taken now');
    const key = await getJson<{ publicKey: string; epoch: number }>(`${R.url}/api/v1/replication/key`, ADMIN_TOKEN);
    assert.equal(key.body.publicKey, out.publicKey);
    assert.equal(key.body.epoch, 2);
  });

  it('a replica that followed the old primary re-reads the new feed from its start', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'granary-repl-promote-r2-'));
    const first = await replicaOf(P.url, oldKey, dataDir);
    await converge(first, P);
    await first.close();
    const second = await replicaOf(R.url, newKey, dataDir);
    others.push(second);
    await converge(second, R);
    assert.equal(await (await second.fetch('/generic/files/b.txt')).text(), 'b');
  });

  it('refuses the old primary once given the new key (the old feed is fenced)', async () => {
    const fenced = await replicaOf(P.url, newKey);
    others.push(fenced);
    const refused = await until('a refusal', async () => (await status(fenced)).follower?.refused ?? undefined);
    assert.equal(refused.reason, 'signature');
    assert.equal((await fenced.fetch('/generic/files/a.txt')).status, 404);
  });
});
