/**
 * `granary serve` as a real process: the first-start admin token (shown once, never logged), GRANARY_ADMIN_TOKEN
 * and its rotation, and graceful shutdown on SIGTERM (in-flight uploads finish, new requests are refused).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

const BIN = fileURLToPath(new URL('../../bin/granary', import.meta.url));

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'granary-process-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Served {
  child: ChildProcessWithoutNullStreams;
  /** http://127.0.0.1:<port>, from the "granary listening" log line. */
  url: string;
  stdout(): string;
  stderr(): string;
  /** Resolves when a stdout log line has this `msg` (checks lines already seen too). */
  logged(msg: string): Promise<Record<string, unknown>>;
  /** Resolves with the match once stderr matches (stdout and stderr arrive independently). */
  stderrMatch(re: RegExp): Promise<RegExpExecArray>;
  /** Sends SIGTERM and resolves with the exit code once all output has been read. */
  stop(): Promise<number | null>;
  /** The exit code, after stdout and stderr are closed (so both are complete). */
  exited: Promise<number | null>;
}

const running = new Set<ChildProcessWithoutNullStreams>();
after(() => {
  // Only a failed test leaves one behind.
  for (const c of running) c.kill('SIGKILL');
});

/** Starts `granary serve --port 0` on a data dir, with a clean environment plus `env`. */
async function serve(dataDir: string, env: Record<string, string> = {}): Promise<Served> {
  const child = spawn(BIN, ['serve', '--port', '0', '--data-dir', dataDir], {
    cwd: work,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work, ...env },
  });
  running.add(child);
  let out = '';
  let err = '';
  const waiters: { msg: string; resolve: (l: Record<string, unknown>) => void }[] = [];
  const lines: Record<string, unknown>[] = [];
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    partial += d;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      lines.push(parsed);
      for (const w of waiters.filter((x) => x.msg === parsed.msg)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(parsed);
      }
    }
  });
  const errWaiters: (() => void)[] = [];
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    for (const w of [...errWaiters]) w();
  });
  const exited = once(child, 'close').then(([code]) => {
    running.delete(child);
    return code as number | null;
  });
  const logged = (msg: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const seen = lines.find((l) => l.msg === msg);
      if (seen) return resolve(seen);
      waiters.push({ msg, resolve });
      void exited.then((code) => reject(new Error(`granary exited (${code}) before logging "${msg}"\nstdout: ${out}\nstderr: ${err}`)));
    });
  const stderrMatch = (re: RegExp) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const m = re.exec(err);
        if (!m) return;
        errWaiters.splice(errWaiters.indexOf(check), 1);
        resolve(m);
      };
      errWaiters.push(check);
      check();
      void exited.then(() => reject(new Error(`granary exited without printing ${re} on stderr:\n${err}`)));
    });
  const listening = await logged('granary listening');
  const url = String(listening.address);
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.notEqual(new URL(url).port, '0', 'the real port is logged');
  return {
    child,
    url,
    stdout: () => out,
    stderr: () => err,
    logged,
    stderrMatch,
    exited,
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

async function me(url: string, token: string): Promise<{ status: number; body: { user?: string; admin?: boolean } }> {
  const res = await fetch(`${url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as { user?: string; admin?: boolean } };
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

describe('granary serve', { concurrency: true }, () => {
  it('prints a first-start admin token once, never logs it, and exits 0 on SIGTERM', async () => {
    const dataDir = join(work, 'first-start');
    const first = await serve(dataDir);
    const banner = await first.stderrMatch(/First start: created user "admin"[\s\S]*?\n\s+(gra_[A-Za-z0-9_-]+)\n/);
    const token = banner[1];

    assert.deepEqual(await me(first.url, token), { status: 200, body: { user: 'admin', admin: true, via: 'token', readOnly: false } });
    // A request that fails and is logged, with the token in Basic form, and a 404 with it as Bearer.
    const basic = await fetch(`${first.url}/api/v1/users`, { headers: { authorization: 'Basic ' + Buffer.from(`admin:${token}`).toString('base64') } });
    assert.equal(basic.status, 200);
    await basic.arrayBuffer();
    const missing = await fetch(`${first.url}/api/v1/nothing-here`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();
    assert.equal(await first.stop(), 0);

    const second = await serve(dataDir);
    assert.equal((await me(second.url, token)).status, 200, 'the first token still works');
    assert.equal(await second.stop(), 0);
    assert.doesNotMatch(second.stderr(), /First start/);
    assert.doesNotMatch(second.stderr(), /gra_/);

    // Both runs' output is complete now: the token is in the first banner and nowhere else.
    assert.equal(count(first.stderr(), token), 1, 'the token appears once on stderr');
    assert.equal(count(first.stdout(), token), 0, 'first run: not in the log');
    assert.equal(count(second.stdout() + second.stderr(), token), 0, 'second run: nowhere');
    assert.equal(count(first.stderr().replace(banner[0], ''), token), 0, 'first run: only in the banner');
    assert.match(first.stdout(), /"msg":"shutting down: draining in-flight requests"/);
  });

  it('uses GRANARY_ADMIN_TOKEN instead of a banner, and rotates it when it changes', async () => {
    const dataDir = join(work, 'admin-token');
    const oldToken = 'operator-chosen-admin-token-0001';
    const newToken = 'operator-chosen-admin-token-0002';

    const first = await serve(dataDir, { GRANARY_ADMIN_TOKEN: oldToken });
    assert.equal((await me(first.url, oldToken)).body.admin, true);
    assert.equal(await first.stop(), 0);
    assert.doesNotMatch(first.stderr(), /First start/);
    assert.doesNotMatch(first.stderr(), /gra_/);

    const second = await serve(dataDir, { GRANARY_ADMIN_TOKEN: newToken });
    assert.deepEqual(await me(second.url, newToken), { status: 200, body: { user: 'admin', admin: true, via: 'token', readOnly: false } });
    assert.equal((await me(second.url, oldToken)).status, 401, 'the previous admin token is revoked');
    assert.equal(await second.stop(), 0);
    assert.doesNotMatch(second.stderr(), /First start/);

    for (const out of [first.stdout(), first.stderr(), second.stdout(), second.stderr()]) {
      assert.ok(!out.includes(oldToken) && !out.includes(newToken), 'admin tokens never reach the output');
    }
  });

  it('drains an in-flight upload on SIGTERM, refuses new requests, then exits 0', async () => {
    const dataDir = join(work, 'graceful');
    const token = 'graceful-shutdown-admin-token-01';
    const env = { GRANARY_ADMIN_TOKEN: token, GRANARY_REPOSITORIES: JSON.stringify([{ name: 'files', format: 'generic' }]) };
    const s = await serve(dataDir, env);
    const { port } = new URL(s.url);

    const chunks = Array.from({ length: 4 }, (_, i) => Buffer.alloc(64 * 1024, 97 + i));
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const req = request({
      host: '127.0.0.1',
      port,
      method: 'PUT',
      path: '/generic/files/big',
      agent: false,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': total, connection: 'close' },
    });
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      });
      req.on('error', reject);
    });
    req.write(chunks[0]);
    // The server has the request once Fastify logs it; only then is it "in flight".
    await s.logged('incoming request');
    req.write(chunks[1]);

    s.child.kill('SIGTERM');
    await s.logged('shutting down: draining in-flight requests');

    // A new request on a new connection is refused — the port is closed (ECONNREFUSED), a connection that raced the
    // close is dropped unread (ECONNRESET / "other side closed"), or Fastify answers 503 — and never executed.
    const refused = await fetch(`${s.url}/generic/files/late`, {
      method: 'PUT',
      body: 'too late',
      headers: { authorization: `Bearer ${token}`, connection: 'close' },
    }).then(
      (r) => ({ status: r.status }),
      (e: Error & { cause?: { code?: string } }) => ({ error: e.cause?.code ?? e.message }),
    );
    assert.ok(
      ('error' in refused && ['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE'].includes(refused.error)) ||
        ('status' in refused && refused.status === 503),
      `a request after SIGTERM was not refused: ${JSON.stringify(refused)}`,
    );
    assert.equal(s.child.exitCode, null, 'still running while the upload is in flight');

    req.write(chunks[2]);
    req.end(chunks[3]);
    const res = await response;
    assert.equal(res.status, 201, res.body);
    assert.equal((JSON.parse(res.body) as { size: number }).size, total);
    assert.equal(await s.exited, 0, s.stderr());

    // The upload was committed before the process went away; the refused one was not.
    const again = await serve(dataDir, env);
    try {
      const get = await fetch(`${again.url}/generic/files/big`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(get.status, 200);
      assert.deepEqual(Buffer.from(await get.arrayBuffer()), Buffer.concat(chunks));
      const late = await fetch(`${again.url}/generic/files/late`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(late.status, 404, 'the refused request was not executed');
      await late.arrayBuffer();
    } finally {
      assert.equal(await again.stop(), 0);
    }
  });
});
