/**
 * A chunked OCI upload interrupted by killing the server (SIGKILL, mid-way through a PATCH), then the server
 * restarted on the same data dir: the session is still there and reports how far it got (a prefix of what
 * was sent, at least the acknowledged first chunk), the client resumes from that Range and the closing PUT
 * publishes exactly the right blob; the blob is never visible before that PUT; a wrong final digest leaves
 * nothing. (The spec would also allow answering BLOB_UPLOAD_UNKNOWN after a restart; Granary promises that
 * sessions survive one, so this test holds it to resuming.)
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { after, before, it } from 'node:test';

const BIN = fileURLToPath(new URL('../../../bin/granary', import.meta.url));
const TOKEN = 'restart-test-admin-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const MiB = 1024 * 1024;

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let work: string;
const running = new Set<ChildProcess>();
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'granary-oci-restart-'));
});
after(async () => {
  for (const c of running) c.kill('SIGKILL'); // only a failed test leaves one behind
  await rm(work, { recursive: true, force: true });
});

interface Served {
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
}

/** `granary serve --port 0 --data-dir <dataDir>`; the address comes from the "granary listening" log line. */
async function serve(dataDir: string): Promise<Served> {
  const child = spawn(BIN, ['serve', '--port', '0', '--data-dir', dataDir], {
    cwd: work,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work, GRANARY_ADMIN_TOKEN: TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const exited = once(child, 'exit').then(([code]) => {
    running.delete(child);
    return code as number | null;
  });
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      for (const line of out.split('\n')) {
        if (!line.includes('"granary listening"')) continue;
        resolve(String((JSON.parse(line) as { address: string }).address));
      }
    });
    void exited.then((code) => reject(new Error(`granary exited (${code}) before listening\nstdout: ${out}\nstderr: ${err}`)));
  });
  return { child, url, exited };
}

async function kill(s: Served): Promise<void> {
  s.child.kill('SIGKILL');
  await s.exited;
}

/** HEAD of the blob in the image: its status. */
async function blobStatus(url: string, digest: string): Promise<number> {
  const res = await fetch(`${url}/v2/reg/img/blobs/${digest}`, { method: 'HEAD', headers: AUTH });
  return res.status;
}

/** GET upload status: the next byte the session expects, or null when the session is unknown. */
async function uploadOffset(url: string, location: string): Promise<number | null> {
  const res = await fetch(url + location, { headers: AUTH });
  const body = await res.text();
  if (res.status === 404) {
    assert.equal((JSON.parse(body) as { errors: { code: string }[] }).errors[0].code, 'BLOB_UPLOAD_UNKNOWN');
    return null;
  }
  assert.equal(res.status, 204, body);
  const m = /^0-(\d+)$/.exec(res.headers.get('range') ?? '');
  assert.ok(m, `Range header: ${res.headers.get('range')}`);
  return Number(m[1]) + 1;
}

it('a chunked upload survives SIGKILL of the server mid-PATCH and resumes from its reported Range', async () => {
  const dataDir = join(work, 'data');
  const blob = randomBytes(6 * MiB);
  const digest = sha256(blob);
  const first = MiB;

  let a = await serve(dataDir);
  const created = await fetch(`${a.url}/api/v1/repositories`, {
    method: 'POST',
    headers: { ...AUTH, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'reg', format: 'oci' }),
  });
  assert.equal(created.status, 201, await created.text());

  const post = await fetch(`${a.url}/v2/reg/img/blobs/uploads/`, { method: 'POST', headers: AUTH });
  assert.equal(post.status, 202, await post.text());
  const location = post.headers.get('location')!;
  const chunk1 = await fetch(a.url + location, {
    method: 'PATCH',
    headers: { ...AUTH, 'content-type': 'application/octet-stream', 'content-range': `0-${first - 1}` },
    body: blob.subarray(0, first),
  });
  assert.equal(chunk1.status, 202, await chunk1.text());
  assert.equal(chunk1.headers.get('range'), `0-${first - 1}`);

  // The second chunk announces the rest of the blob but sends only part of it; the server is killed while
  // it waits for more.
  const u = new URL(a.url);
  const sent = 2 * MiB;
  const patch = request({
    host: u.hostname,
    port: u.port,
    method: 'PATCH',
    path: location,
    headers: { ...AUTH, 'content-type': 'application/octet-stream', 'content-length': String(blob.length - first), 'content-range': `${first}-${blob.length - 1}` },
  });
  const patchFailed = new Promise<Error>((resolve) => patch.on('error', resolve));
  patch.on('response', (res) => assert.fail(`the interrupted PATCH got an answer: ${res.statusCode}`));
  patch.write(blob.subarray(first, first + sent));
  // Wait until the server has written some of the second chunk (the session's size is the file's).
  let progress = first;
  for (let i = 0; i < 1000 && progress <= first; i++) {
    await sleep(10);
    progress = (await uploadOffset(a.url, location)) ?? 0;
  }
  assert.ok(progress > first, 'the server never reported bytes of the second chunk');
  assert.equal(await blobStatus(a.url, digest), 404, 'not visible mid-upload');
  await kill(a);
  await patchFailed;

  a = await serve(dataDir);
  assert.equal(await blobStatus(a.url, digest), 404, 'not visible after the restart');
  const offset = await uploadOffset(a.url, location);
  assert.ok(offset !== null, 'the session survived the restart');
  assert.ok(offset >= first && offset <= first + sent, `resumes within what was sent: ${offset}`);

  // Resume exactly where the server says; the first resumed chunk stops short, to show a normal chunk works too.
  const mid = offset + Math.floor((blob.length - offset) / 2);
  for (const [from, to] of [
    [offset, mid],
    [mid, blob.length],
  ]) {
    const res = await fetch(a.url + location, {
      method: 'PATCH',
      headers: { ...AUTH, 'content-type': 'application/octet-stream', 'content-range': `${from}-${to - 1}` },
      body: blob.subarray(from, to),
    });
    assert.equal(res.status, 202, await res.text());
    assert.equal(res.headers.get('range'), `0-${to - 1}`);
  }
  assert.equal(await blobStatus(a.url, digest), 404, 'not visible before the closing PUT');
  const put = await fetch(`${a.url}${location}?digest=${encodeURIComponent(digest)}`, { method: 'PUT', headers: AUTH });
  assert.equal(put.status, 201, await put.text());
  assert.equal(put.headers.get('docker-content-digest'), digest);
  const got = await fetch(`${a.url}/v2/reg/img/blobs/${digest}`, { headers: AUTH });
  assert.equal(got.status, 200);
  assert.equal(sha256(Buffer.from(await got.arrayBuffer())), digest);
  assert.equal(await uploadOffset(a.url, location), null, 'the finished session is gone');

  // A wrong final digest leaves nothing: no blob under either digest, no session.
  const other = randomBytes(MiB);
  const wrong = sha256(randomBytes(16));
  const s2 = await fetch(`${a.url}/v2/reg/img/blobs/uploads/`, { method: 'POST', headers: AUTH });
  const loc2 = s2.headers.get('location')!;
  assert.equal((await fetch(a.url + loc2, { method: 'PATCH', headers: AUTH, body: other })).status, 202);
  const bad = await fetch(`${a.url}${loc2}?digest=${wrong}`, { method: 'PUT', headers: AUTH });
  assert.equal(bad.status, 400);
  assert.equal(((await bad.json()) as { errors: { code: string }[] }).errors[0].code, 'DIGEST_INVALID');
  assert.equal(await blobStatus(a.url, sha256(other)), 404);
  assert.equal(await blobStatus(a.url, wrong), 404);
  assert.equal(await uploadOffset(a.url, loc2), null);

  // After another kill and restart, the published blob is still there.
  await kill(a);
  a = await serve(dataDir);
  assert.equal(await blobStatus(a.url, digest), 200);
  assert.equal(await blobStatus(a.url, sha256(other)), 404);
  a.child.kill('SIGTERM');
  assert.equal(await a.exited, 0);
});
