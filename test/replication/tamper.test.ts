/**
 * A replica refuses a tampered feed before applying anything. A tiny node:http server stands in for the primary:
 * it relays genuine pages from a real primary, then alters them — a signature from another key, an event changed
 * after signing, a validly signed page that rewinds to an earlier position, a validly signed head whose chain
 * does not continue the one applied (a fork). Each time the replica's state, position and blob store stay as
 * they were, the refusal is counted in /metrics and /readyz says degraded.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, startServer, type TestServer } from '../helpers/server.ts';
import { canonicalJson, type FeedHead, type FeedPage } from '../../src/replication/feed-format.ts';
import { getJson, savePublicKey, until, noKeepAlive } from './helpers.ts';

noKeepAlive();

let work: string;
let primary: TestServer;
let keyPath: string;
let primaryPrivatePem: string;
let fake: Server;
let fakeUrl: string;
/** What the fake primary answers to a feed request from `since`. */
let respond: (since: number) => Promise<FeedPage>;
const replicas: TestServer[] = [];

const genuine = async (since: number): Promise<FeedPage> =>
  (await getJson<FeedPage>(`${primary.url}/api/v1/replication/feed?since=${since}`, ADMIN_TOKEN)).body;
const resign = (head: FeedHead): string => sign(null, Buffer.from(canonicalJson(head)), primaryPrivatePem).toString('base64');

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'granary-repl-tamper-'));
  primary = await startServer();
  await primary.services.repos.create({ name: 'files', format: 'generic', anonymousRead: false }, 'test');
  for (const [p, body] of [['a.txt', 'one'], ['b.txt', 'two']]) {
    assert.equal((await primary.fetch(`/generic/files/${p}`, { method: 'PUT', body })).status, 201);
  }
  keyPath = await savePublicKey(primary.url, ADMIN_TOKEN, work);
  primaryPrivatePem = await readFile(join(primary.dataDir, 'keys', 'replication.pem'), 'utf8');
  fake = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/api/v1/replication/feed') {
      // Blobs are relayed untouched: a refused page must not even get that far.
      void fetch(primary.url + url.pathname, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }).then(async (r) => {
        res.writeHead(r.status).end(Buffer.from(await r.arrayBuffer()));
      });
      return;
    }
    void respond(Number(url.searchParams.get('since'))).then((page) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(page));
    });
  });
  fake.listen(0, '127.0.0.1');
  await once(fake, 'listening');
  fakeUrl = `http://127.0.0.1:${(fake.address() as { port: number }).port}`;
});
after(async () => {
  for (const r of replicas) await r.close();
  fake?.close();
  await primary?.close();
  await rm(work, { recursive: true, force: true });
});

async function replicaOfFake(): Promise<TestServer> {
  // The previous test's replica would keep polling the fake primary and take the answers meant for this one.
  for (const r of replicas.splice(0)) await r.close();
  const r = await startServer({ config: { replication: { replicaOf: [fakeUrl], primaryKey: keyPath, token: ADMIN_TOKEN, waitSeconds: 1 } } });
  replicas.push(r);
  return r;
}

interface Status {
  ok: boolean;
  position: number;
  follower: { refused: { reason: string; message: string } | null };
}
const status = async (r: TestServer) => (await getJson<Status>(`${r.url}/api/v1/replication/status`, ADMIN_TOKEN)).body;
const refusedFor = (r: TestServer) => until('a refusal', async () => (await status(r)).follower.refused ?? undefined);

async function assertNothingApplied(r: TestServer, position: number, repos: number, digest: string | null): Promise<void> {
  const st = await status(r);
  assert.equal(st.position, position);
  assert.equal(st.ok, false);
  const state = (await getJson<{ repositories: number }>(`${r.url}/api/v1/replication/state`, ADMIN_TOKEN)).body;
  assert.equal(state.repositories, repos);
  if (digest) assert.equal((await r.fetch(`/api/v1/replication/blobs/${digest}`)).status, 404, 'no blob fetched for a refused page');
  const ready = await getJson<{ status: string }>(`${r.url}/readyz`, null);
  assert.equal(ready.body.status, 'degraded');
}

describe('a tampered feed', () => {
  it('with a signature from another key is refused', async () => {
    const other = generateKeyPairSync('ed25519').privateKey;
    respond = async (since) => {
      const page = await genuine(since);
      return { ...page, signature: sign(null, Buffer.from(canonicalJson(page.head)), other).toString('base64') };
    };
    const r = await replicaOfFake();
    const refused = await refusedFor(r);
    assert.equal(refused.reason, 'signature');
    const digest = (await genuine(0)).events.find((e) => e.kind === 'asset.put')!.digest;
    await assertNothingApplied(r, 0, 0, digest);
    const metrics = await (await r.fetch('/metrics')).text();
    assert.match(metrics, /granary_replication_pages_refused_total\{reason="signature"\} [1-9]/);
  });

  it('with an event altered after signing is refused', async () => {
    respond = async (since) => {
      const page = await genuine(since);
      const i = page.events.findIndex((e) => e.kind === 'asset.put');
      page.events[i] = { ...page.events[i], path: 'evil.txt' };
      return page;
    };
    const r = await replicaOfFake();
    assert.equal((await refusedFor(r)).reason, 'altered');
    await assertNothingApplied(r, 0, 0, (await genuine(0)).events.find((e) => e.kind === 'asset.put')!.digest);
  });

  it('that rewinds to an earlier position is refused, even correctly signed', async () => {
    // The first page is genuine and applied; afterwards the "primary" replays its history from the start.
    let served = 0;
    respond = async (since) => (served++ === 0 ? genuine(since) : genuine(0));
    const r = await replicaOfFake();
    const first = await genuine(0);
    assert.equal((await refusedFor(r)).reason, 'rewind');
    await assertNothingApplied(r, first.head.to, 1, null);
  });

  it('that forks the history (a re-signed head with another chain) is refused', async () => {
    let served = 0;
    const first = await genuine(0);
    assert.equal((await primary.fetch('/generic/files/c.txt', { method: 'PUT', body: 'three' })).status, 201);
    respond = async (since) => {
      if (served++ === 0) return first;
      // The next page is genuine except that it claims to continue from a different chain value.
      const page = await genuine(since);
      const head = { ...page.head, prev: 'f'.repeat(64) };
      return { ...page, head, signature: resign(head) };
    };
    const r = await replicaOfFake();
    assert.equal((await refusedFor(r)).reason, 'fork');
    await assertNothingApplied(r, first.head.to, 1, null);
    assert.equal((await r.fetch('/generic/files/c.txt')).status, 404);
  });
});
