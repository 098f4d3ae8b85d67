/**
 * Scale-out: two (then three) real `granary serve` processes on one PostgreSQL database and one S3 bucket
 * (s3rver). A push through one node is pulled through the other (skopeo); an OCI chunked upload moves between
 * nodes request by request; 50 pushes of overlapping images (30 at once, racing on shared blobs and tags, then
 * two waves) split across both nodes leave a consistent store with every tag at its last completed push; a
 * token revoked or a repository changed on one node takes effect on the other once its event watcher polls; a
 * node killed with SIGKILL mid-upload leaves the others serving and the store consistent.
 * Skips, naming what is missing, without PostgreSQL or s3rver (and the skopeo test without skopeo).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { missingClient, writeOciLayout } from '../clients/oci-layout.ts';
import { runTool } from '../clients/run-tool.ts';
import { ADMIN, createCluster, type Cluster, type Node } from './cluster.ts';
import { blobOf, makeImage, pushBlob, pushImage, putManifest, randomBlob, sha256, type Blob } from './oci-push.ts';

const cluster = await createCluster();
const skip = typeof cluster === 'string' ? cluster : false;
const REPO = 'scale';

/** Rows of the shared database, read directly (what every node sees). */
async function query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: (cluster as Cluster).pg.url });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await c.end();
  }
}

/** Waits until `check` holds, polling; the watcher polls every second, so 10 s is many polls, not a timing claim. */
async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await sleep(100);
  }
  assert.fail(`${what}: not seen within 10 s`);
}

/**
 * The store is consistent: the event log is 1..n without gaps or duplicates; every tag of the repository
 * resolves, through `node`, to its manifest, and every blob that manifest names is served with bytes that hash
 * to its digest.
 */
async function assertConsistent(node: Node): Promise<Map<string, string>> {
  const seqs = (await query<{ seq: string }>('select seq from events order by seq')).map((r) => Number(r.seq));
  assert.ok(seqs.length > 0);
  assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'event log is gap-free and duplicate-free');
  const tags = await query<{ scope: string; name: string; target: string }>(
    'select t.scope, t.name, t.target from tags t join repositories r on r.id = t.repo_id where r.name = $1',
    [REPO],
  );
  const out = new Map<string, string>();
  for (const t of tags) {
    const res = await node.fetch(`/v2/${REPO}/${t.scope}/manifests/${t.name}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(res.status, 200, `${t.scope}:${t.name}`);
    const body = Buffer.from(await res.arrayBuffer());
    const digest = sha256(body);
    assert.equal(res.headers.get('docker-content-digest'), digest);
    const m = JSON.parse(body.toString()) as { config: { digest: string }; layers: { digest: string }[] };
    for (const d of [m.config.digest, ...m.layers.map((l) => l.digest)]) {
      const b = await node.fetch(`/v2/${REPO}/${t.scope}/blobs/${d}`);
      assert.equal(b.status, 200, `blob ${d} of ${t.scope}:${t.name}`);
      assert.equal(sha256(Buffer.from(await b.arrayBuffer())), d);
    }
    out.set(`${t.scope}:${t.name}`, digest);
  }
  return out;
}

describe('two nodes on PostgreSQL + S3', { skip, timeout: 300_000 }, () => {
  const c = cluster as Cluster;
  let a: Node;
  let b: Node;
  before(async () => {
    // One after the other: the first start of an empty database (admin bootstrap) is not yet safe to run on two
    // nodes at once (docs/operations.md says to start the first node alone).
    a = await c.start('a');
    b = await c.start('b');
    const res = await a.fetch('/api/v1/repositories', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: REPO, format: 'oci' }),
    });
    assert.equal(res.status, 201, await res.text());
  });
  after(() => c.close());

  it('pushes through node A and pulls through node B with skopeo', { skip: missingClient('skopeo') }, async () => {
    const src = await writeOciLayout(join(c.work, 'layout'), { tag: 'v1', layers: 2, seed: 'scale-skopeo' });
    const authFile = join(c.work, 'auth.json');
    const hostA = new URL(a.url).host;
    const hostB = new URL(b.url).host;
    const push = await runTool('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', `admin:${ADMIN}`, src.ref, `docker://${hostA}/${REPO}/app:v1`], { authFile });
    assert.equal(push.code, 0, push.stderr);
    const back = join(c.work, 'back');
    const pull = await runTool('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', `admin:${ADMIN}`, `docker://${hostB}/${REPO}/app:v1`, `oci:${back}:v1`], { authFile });
    assert.equal(pull.code, 0, pull.stderr);
    for (const d of src.blobs) {
      const file = join(back, 'blobs', 'sha256', d.slice('sha256:'.length));
      assert.ok(existsSync(file), `blob ${d} came back through node B`);
      assert.equal(sha256(await readFile(file)), d);
    }
  });

  it('continues one chunked upload across nodes: PATCH on A, PATCH on B, PUT on A', async () => {
    const blob = randomBlob(300_000);
    const start = await a.fetch(`/v2/${REPO}/chunked/blobs/uploads/`, { method: 'POST' });
    assert.equal(start.status, 202);
    const loc = start.headers.get('location')!;
    const patch = (node: Node, url: string, from: number, to: number) =>
      node.fetch(url, {
        method: 'PATCH',
        body: blob.bytes.subarray(from, to),
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${from}-${to - 1}` },
      });
    const p1 = await patch(a, loc, 0, 100_000);
    assert.equal(p1.status, 202, await p1.text());
    // B knows the session A started and where it stands.
    const status = await b.fetch(p1.headers.get('location')!);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-99999');
    const p2 = await patch(b, status.headers.get('location') ?? p1.headers.get('location')!, 100_000, 200_000);
    assert.equal(p2.status, 202, await p2.text());
    assert.equal(p2.headers.get('range'), '0-199999');
    const next = p2.headers.get('location')!;
    const sep = next.includes('?') ? '&' : '?';
    const done = await a.fetch(`${next}${sep}digest=${encodeURIComponent(blob.digest)}`, {
      method: 'PUT',
      body: blob.bytes.subarray(200_000),
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(done.status, 201, await done.text());
    for (const node of [a, b]) {
      const got = await node.fetch(`/v2/${REPO}/chunked/blobs/${blob.digest}`);
      assert.equal(got.status, 200);
      assert.ok(Buffer.from(await got.arrayBuffer()).equals(blob.bytes));
    }
  });

  it('keeps a consistent store under 50 pushes of overlapping images, 30 at once then two waves, split across both nodes', async () => {
    const pool: Blob[] = Array.from({ length: 12 }, (_, i) => randomBlob(20_000 + i * 4_000));
    // 10 tags (5 names × 2 tags). Pushes 0–29 all at once (3 racing on each tag), then two waves of 10, one push
    // per tag each, so the last completed push of every tag is known: it must be the one of the last wave.
    const pushes = Array.from({ length: 50 }, (_, i) => {
      const layers = [pool[i % 12], pool[(i * 5 + 1) % 12], pool[(i * 7 + 3) % 12]].filter((l, j, all) => all.indexOf(l) === j);
      return { name: `img${i % 5}`, tag: `t${Math.floor(i / 5) % 2}`, image: makeImage(layers, `push-${i}`), manifestStart: 0, manifestEnd: 0 };
    });
    let turn = 0;
    const pick = (): Node => (turn++ % 2 === 0 ? a : b);
    const push = async (p: (typeof pushes)[number]): Promise<void> => {
      await Promise.all([p.image.config, ...p.image.layers].map((bl) => pushBlob(pick(), `${REPO}/${p.name}`, bl)));
      p.manifestStart = performance.now();
      await putManifest(pick(), `${REPO}/${p.name}`, p.tag, p.image.manifest);
      p.manifestEnd = performance.now();
    };
    await Promise.all(pushes.slice(0, 30).map(push));
    await Promise.all(pushes.slice(30, 40).map(push));
    await Promise.all(pushes.slice(40, 50).map(push));
    const tags = await assertConsistent(a);
    for (const key of new Set(pushes.map((p) => `${p.name}:${p.tag}`))) {
      const mine = pushes.filter((p) => `${p.name}:${p.tag}` === key);
      const winner = mine.find((p) => p.image.digest === tags.get(key));
      assert.ok(winner, `${key} points at one of its pushes`);
      assert.equal(winner, mine[mine.length - 1], `${key} points at its push of the last wave`);
      // The last completed push wins: no push of this tag started its manifest PUT after the winner's returned.
      for (const p of mine) assert.ok(!(p.manifestStart > winner.manifestEnd), `${key}: a later push lost to an earlier one`);
      // Node B agrees, byte for byte.
      const onB = await b.fetch(`/v2/${REPO}/${key.replace(':', '/manifests/')}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      assert.equal(sha256(Buffer.from(await onB.arrayBuffer())), winner.image.digest);
    }
    // Every pushed manifest (not only the tagged ones) is still there with its blobs, by digest, on both nodes.
    for (const p of pushes) {
      const res = await b.fetch(`/v2/${REPO}/${p.name}/manifests/${p.image.digest}`, { method: 'HEAD' });
      assert.equal(res.status, 200);
    }
  });

  it('applies a token revoked and a repository changed on A to B once B polls the event log', async () => {
    const created = await a.fetch('/api/v1/tokens', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'short-lived' }),
    });
    assert.equal(created.status, 201);
    const { token, info } = (await created.json()) as { token: string; info: { id: string } };
    // B has seen the token work (and may have cached the verdict).
    assert.equal((await b.fetch('/api/v1/me', { auth: token })).status, 200);
    assert.equal((await a.fetch(`/api/v1/tokens/${info.id}`, { method: 'DELETE' })).status, 204);
    await eventually('token revoked on A refused by B', async () => (await b.fetch('/api/v1/me', { auth: token })).status === 401);

    const anon = async () => (await b.fetch(`/v2/${REPO}/chunked/tags/list`, { auth: null })).status;
    assert.equal(await anon(), 401);
    const patched = await a.fetch(`/api/v1/repositories/${REPO}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ anonymousRead: true }),
    });
    assert.equal(patched.status, 200, await patched.text());
    await eventually('anonymousRead set on A honoured by B', async () => (await anon()) !== 401);
  });

  it('keeps serving and stays consistent when a node is killed mid-upload', async () => {
    const victim = await c.start('c');
    const before = await assertConsistent(a);
    // A session with one chunk stored through C, then a second chunk cut off by SIGKILL, and a monolithic
    // upload cut off the same way.
    const blob = randomBlob(2_000_000);
    const start = await victim.fetch(`/v2/${REPO}/killed/blobs/uploads/`, { method: 'POST' });
    const first = await victim.fetch(start.headers.get('location')!, {
      method: 'PATCH',
      body: blob.bytes.subarray(0, 500_000),
      headers: { 'content-type': 'application/octet-stream', 'content-range': '0-499999' },
    });
    assert.equal(first.status, 202);
    const session = first.headers.get('location')!;
    const stalled = (bytes: Buffer) =>
      Readable.from(
        (async function* () {
          yield bytes.subarray(0, 300_000);
          await sleep(60_000, undefined, { ref: false }); // never sends the rest: the node dies first
        })(),
      );
    const cut = victim
      .fetch(session, { method: 'PATCH', body: stalled(blob.bytes.subarray(500_000)), duplex: 'half', headers: { 'content-type': 'application/octet-stream' } } as RequestInit)
      .catch((e: Error) => e);
    const other = randomBlob(1_000_000);
    const mono = await victim.fetch(`/v2/${REPO}/killed/blobs/uploads/`, { method: 'POST' });
    const monoLoc = mono.headers.get('location')!;
    const cut2 = victim
      .fetch(`${monoLoc}${monoLoc.includes('?') ? '&' : '?'}digest=${encodeURIComponent(other.digest)}`, {
        method: 'PUT',
        body: stalled(other.bytes),
        duplex: 'half',
        headers: { 'content-type': 'application/octet-stream' },
      } as RequestInit)
      .catch((e: Error) => e);
    await sleep(300); // let the partial bodies reach C
    await victim.kill('SIGKILL');
    assert.ok((await cut) instanceof Error);
    assert.ok((await cut2) instanceof Error);

    // A and B keep serving everything that was there…
    assert.deepEqual(await assertConsistent(b), before);
    // …the half-sent blob is not visible…
    assert.equal((await a.fetch(`/v2/${REPO}/killed/blobs/${other.digest}`, { method: 'HEAD' })).status, 404);
    // …and the session C held goes on through A at the last offset C completed.
    const status = await a.fetch(session);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-499999');
    const rest = await a.fetch(session, {
      method: 'PATCH',
      body: blob.bytes.subarray(500_000),
      headers: { 'content-type': 'application/octet-stream', 'content-range': `500000-${blob.bytes.length - 1}` },
    });
    assert.equal(rest.status, 202, await rest.text());
    const loc = rest.headers.get('location')!;
    const done = await b.fetch(`${loc}${loc.includes('?') ? '&' : '?'}digest=${encodeURIComponent(blob.digest)}`, { method: 'PUT' });
    assert.equal(done.status, 201, await done.text());
    await pushImage(() => a, `${REPO}/killed`, 'after', makeImage([blob, blobOf(Buffer.from('after the kill'))], 'after'));
    const now = await assertConsistent(b);
    assert.equal(now.size, before.size + 1);
  });
});
