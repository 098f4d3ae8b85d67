/**
 * Three `granary serve` processes on loopback: a primary P, replica A (eager blobs) and replica B (lazy blobs,
 * A listed as its second source). Images pushed with skopeo and generic files reach both replicas, which serve
 * them to skopeo with the primary's digests; writes to a replica are refused; after SIGKILL of P the replicas keep
 * serving and B takes blobs it never had from A; P restarted on its port takes more pushes and both replicas
 * catch up from their stored positions, ending with P's state checksum.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { missingClient, writeOciLayout, type OciLayout } from '../clients/oci-layout.ts';
import { runTool } from '../clients/run-tool.ts';
import { getJson, savePublicKey, until, noKeepAlive } from './helpers.ts';

noKeepAlive();
import { killAll, serveNode, type Node } from './spawn.ts';

const TOKEN = 'repl-admin-token-0123456789abcdef';
const CREDS = `admin:${TOKEN}`;
const ENV = { GRANARY_ADMIN_TOKEN: TOKEN, GRANARY_REPLICATION_TOKEN: TOKEN, GRANARY_REPLICATION_WAIT_SECONDS: '5', GRANARY_LOG_LEVEL: 'info' };

let work: string;
let P: Node;
let A: Node;
let B: Node;
let keyPath: string;
let img1: OciLayout;
let img2: OciLayout;

const host = (n: Node) => new URL(n.url).host;
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function skopeo(args: string[]) {
  return runTool('skopeo', args, { authFile: join(work, 'auth.json') });
}
async function pushImage(to: Node, layout: OciLayout, ref: string) {
  const r = await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', CREDS, layout.ref, `docker://${host(to)}/${ref}`]);
  assert.equal(r.code, 0, r.stderr);
}
/** Pulls `ref` from a node into a fresh layout and checks the manifest digest and every blob digest. */
async function pullAndCheck(from: Node, ref: string, want: OciLayout, name: string) {
  const dir = join(work, 'pulled', name);
  const r = await skopeo(['copy', '--src-tls-verify=false', '--src-creds', CREDS, `docker://${host(from)}/${ref}`, `oci:${dir}:x`]);
  assert.equal(r.code, 0, `pull ${ref} from ${from.url}: ${r.stderr}`);
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  assert.deepEqual(index.manifests.map((m) => m.digest), [want.top.digest]);
  for (const d of want.blobs) {
    const bytes = await readFile(join(dir, 'blobs', 'sha256', d.slice(7)));
    assert.equal(sha256(bytes), d);
  }
}
const state = async (n: Node) => (await getJson<{ checksum: string; assets: number }>(`${n.url}/api/v1/replication/state`, TOKEN)).body;
async function caughtUp(n: Node, want: string) {
  await until(`${n.url} to reach state ${want}`, async () => ((await state(n)).checksum === want ? true : undefined), 30_000);
}
async function putFile(n: Node, path: string, body: string) {
  const res = await fetch(`${n.url}/generic/files/${path}`, { method: 'PUT', body, headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: res.status, text: await res.text() };
}

describe('primary and two replicas as processes', { skip: missingClient('skopeo'), timeout: 240_000 }, () => {
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'granary-repl-proc-'));
    await mkdir(join(work, 'pulled'));
    P = await serveNode({ cwd: work, dataDir: join(work, 'p'), env: ENV });
    for (const body of [
      { name: 'images', format: 'oci' },
      { name: 'files', format: 'generic' },
    ]) {
      const res = await fetch(`${P.url}/api/v1/repositories`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 201, await res.text());
    }
    keyPath = await savePublicKey(P.url, TOKEN, work);
    [img1, img2] = await Promise.all([
      writeOciLayout(join(work, 'img1'), { tag: 'v1', layers: 2, seed: 'repl-1' }),
      writeOciLayout(join(work, 'img2'), { tag: 'v2', layers: 2, seed: 'repl-2' }),
    ]);
    A = await serveNode({ cwd: work, dataDir: join(work, 'a'), args: ['--replica-of', P.url, '--primary-key', keyPath], env: ENV });
    B = await serveNode({
      cwd: work,
      dataDir: join(work, 'b'),
      args: ['--replica-of', P.url, '--replica-of', A.url, '--primary-key', keyPath, '--replication-blobs', 'lazy'],
      env: ENV,
    });
  });
  after(async () => {
    killAll();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('replicas serve what was pushed to the primary, with the same digests', async () => {
    await pushImage(P, img1, 'images/app:v1');
    assert.equal((await putFile(P, 'tools/1.0/tool.bin', 'tool one')).status, 201);
    const want = (await state(P)).checksum;
    await caughtUp(A, want);
    await caughtUp(B, want);
    await pullAndCheck(A, 'images/app:v1', img1, 'a-v1');
    await pullAndCheck(B, 'images/app:v1', img1, 'b-v1');
    for (const n of [A, B]) {
      const res = await fetch(`${n.url}/generic/files/tools/1.0/tool.bin`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(await res.text(), 'tool one');
    }
  });

  it('refuses writes on a replica with a message naming the primary', async () => {
    const r = await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', CREDS, img2.ref, `docker://${host(A)}/images/app:nope`]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /read-only replica of http:\/\/127\.0\.0\.1:\d+/);
    const put = await putFile(B, 'tools/x.bin', 'x');
    assert.equal(put.status, 403);
    assert.ok(put.text.includes(P.url), put.text);
  });

  it('keeps serving with the primary killed; B takes blobs it never had from A', async () => {
    await pushImage(P, img2, 'images/app:v2');
    const want = (await state(P)).checksum;
    await caughtUp(A, want);
    await caughtUp(B, want);
    await P.kill();

    await pullAndCheck(A, 'images/app:v1', img1, 'a-v1-down');
    // B is lazy and has not read v2's blobs yet: with P gone they can only come from A.
    await pullAndCheck(B, 'images/app:v2', img2, 'b-v2-down');
    const metrics = await (await fetch(`${B.url}/metrics`)).text();
    const fromA = new RegExp(`granary_replication_blob_fetches_total\\{source="${A.url}",result="ok"\\} ([0-9]+)`).exec(metrics);
    assert.ok(fromA && Number(fromA[1]) >= img2.blobs.length, `B fetched from A:\n${metrics.split('\n').filter((l) => l.includes('blob_fetches')).join('\n')}`);

    const ready = await until('A to notice the primary is gone', async () => {
      const r = await getJson<{ status: string; checks: { replication: { lag: number; lastContact: string; error?: string } } }>(`${A.url}/readyz`, null);
      return r.body.checks.replication.error ? r : undefined;
    });
    assert.equal(ready.status, 200, 'a replica cut off from its primary still serves');
    assert.match(ready.body.checks.replication.error!, /unreachable/);
    assert.equal(ready.body.checks.replication.lag, 0);
    assert.ok(ready.body.checks.replication.lastContact);
  });

  it('catches up from its stored position when the primary returns', async () => {
    P = await serveNode({ cwd: work, dataDir: join(work, 'p'), port: P.port, env: ENV });
    assert.equal((await putFile(P, 'tools/2.0/tool.bin', 'tool two')).status, 201);
    const img3 = await writeOciLayout(join(work, 'img3'), { tag: 'v3', layers: 1, seed: 'repl-3' });
    await pushImage(P, img3, 'images/app:v3');
    const want = await state(P);
    await caughtUp(A, want.checksum);
    await caughtUp(B, want.checksum);
    assert.equal((await state(A)).assets, want.assets);
    await pullAndCheck(B, 'images/app:v3', img3, 'b-v3');
    const res = await fetch(`${A.url}/generic/files/tools/2.0/tool.bin`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(await res.text(), 'tool two');
  });
});
