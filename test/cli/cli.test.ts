/**
 * The `granary` command as an operator runs it: bin/granary spawned in a temp working directory with a clean
 * environment — `config check`, and the repo/user/token commands against a local data dir and against a
 * running server (whose API then proves the CLI's token works, and stops working once revoked).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, basic, startServer, type TestServer } from '../helpers/server.ts';
import { runGranary, type CliRun } from '../helpers/cli.ts';


type Run = CliRun;

let cwd: string;

function granary(args: string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return runGranary(args, { cwd, ...opts });
}

/** Asserts exit 0 and returns the run. */
async function ok(args: string[], opts?: Parameters<typeof granary>[1]): Promise<Run> {
  const r = await granary(args, opts);
  assert.equal(r.code, 0, `granary ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

before(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'granary-cli-'));
});
after(async () => {
  await rm(cwd, { recursive: true, force: true });
});

describe('granary config check', () => {
  it('accepts a valid file, prints the resolved config and never the admin token', async () => {
    await writeFile(
      join(cwd, 'good.yaml'),
      'port: 9999\nrepositories:\n  - name: all\n    format: generic\n    kind: group\n    members: [a]\n  - name: a\n    format: generic\n',
    );
    const secret = 'cli-test-admin-token-abcdef0123456789';
    const r = await ok(['config', 'check', '-c', 'good.yaml'], { env: { GRANARY_ADMIN_TOKEN: secret } });
    const shown = JSON.parse(r.stdout) as { port: number; repositories: unknown[]; auth: { adminToken?: string } };
    assert.equal(shown.port, 9999);
    assert.equal(shown.repositories.length, 2);
    assert.equal(shown.auth.adminToken, '[set]');
    assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), 'the admin token is not printed');
    assert.match(r.stderr, /configuration is valid/);
  });

  it('exits 2 and names the key of a bad file', async () => {
    await writeFile(join(cwd, 'bad.yaml'), 'port: abc\n');
    const r = await granary(['config', 'check', '--config', 'bad.yaml']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^granary: config: port: /m);
    assert.equal(r.stdout, '');
  });

  it('exits 2 and names the key of a bad environment variable and of a bad group', async () => {
    const env = await granary(['config', 'check'], { env: { GRANARY_RATE_LIMIT_ENABLED: 'maybe' } });
    assert.equal(env.code, 2);
    assert.match(env.stderr, /rateLimit\.enabled/);
    assert.match(env.stderr, /GRANARY_RATE_LIMIT_ENABLED/);

    await writeFile(join(cwd, 'group.yaml'), 'repositories:\n  - name: g\n    format: generic\n    kind: group\n    members: [nowhere]\n');
    const group = await granary(['config', 'check', '-c', 'group.yaml']);
    assert.equal(group.code, 2);
    assert.match(group.stderr, /config: repositories\.0\.members: .*nowhere/);
  });
});

/**
 * The whole life of a repository, a user and a token, driven by the CLI with `flags` selecting the backend;
 * a server on the same data dir (`s`) checks every step through the API and the generic format.
 */
async function scenario(s: TestServer, flags: string[], env: Record<string, string> = {}): Promise<void> {
  const run = (args: string[], o: { input?: string; env?: Record<string, string> } = {}) => ok([...args, ...flags], { env: { ...env, ...o.env }, input: o.input });
  const password = 'bobs-password-123';

  assert.match((await run(['repo', 'create', 'x', '-f', 'generic'])).stdout, /^created hosted generic repository x$/m);
  const shown = await s.api<{ format: string; kind: string }>('GET', '/repositories/x');
  assert.deepEqual([shown.status, shown.body.format, shown.body.kind], [200, 'generic', 'hosted']);

  const repos = JSON.parse((await run(['repo', 'ls', '--json'])).stdout) as { name: string; format: string; kind: string }[];
  assert.deepEqual(
    repos.map((r) => [r.name, r.format, r.kind]),
    [['x', 'generic', 'hosted']],
  );

  await run(['user', 'add', 'bob', '--password-stdin'], { input: `${password}\n` });
  const me = await s.fetch('/api/v1/me', { auth: basic('bob', password) });
  assert.deepEqual(await me.json(), { user: 'bob', admin: false, via: 'password', readOnly: false }, 'the password from stdin was set');

  assert.match((await run(['user', 'grant', 'bob', 'x', 'write'])).stdout, /bob has write on x/);
  const bindings = await s.api<{ bindings: { repository: string; role: string }[] }>('GET', '/bindings?user=bob');
  assert.deepEqual(
    bindings.body.bindings.map((b) => [b.repository, b.role]),
    [['x', 'write']],
  );

  const created = await run(['token', 'create', 'ci', '--user', 'bob']);
  const token = created.stdout.trim();
  assert.match(token, /^gra_[A-Za-z0-9_-]{20,}$/, 'stdout is the token alone');
  assert.equal(count(created.stdout + created.stderr, token), 1, 'the secret is printed exactly once');
  assert.match(created.stderr, /not shown again/);

  const listed = await run(['token', 'ls', '--user', 'bob']);
  assert.ok(!(listed.stdout + listed.stderr).includes(token), 'token ls never prints a secret');
  assert.ok(!listed.stdout.includes('gra_'), 'nor anything that looks like one');
  const row = /^(\S+)\s+bob\s+ci\s/m.exec(listed.stdout);
  assert.ok(row, listed.stdout);
  const id = row[1];
  // --all: every user's tokens, over HTTP (the admin's own list would not hold bob's) as on the data dir.
  const all = JSON.parse((await run(['token', 'ls', '--all', '--json'])).stdout) as { id: string; user: string }[];
  assert.ok(all.some((t) => t.id === id && t.user === 'bob'), JSON.stringify(all));

  const put = await s.fetch('/generic/x/file', { method: 'PUT', body: 'v1', auth: basic('bob', token) });
  assert.equal(put.status, 201, await put.text());

  assert.match((await run(['token', 'revoke', id])).stdout, new RegExp(`revoked token ${id}`));
  // A revoke made by another process reaches the server's auth cache through the event log; one poll of the
  // watcher (it runs every second) is what stands between the two.
  await s.services.changes.poll();
  const denied = await s.fetch('/generic/x/file', { method: 'PUT', body: 'v2', auth: basic('bob', token) });
  assert.equal(denied.status, 401);
  await denied.arrayBuffer();
  const info = await s.api<{ tokens: { id: string; revokedAt: string | null }[] }>('GET', '/tokens?user=bob');
  assert.ok(info.body.tokens.find((t) => t.id === id)?.revokedAt, 'the token is marked revoked');

  assert.match((await run(['repo', 'rm', 'x'])).stdout, /deleted repository x/);
  assert.equal((await s.api('GET', '/repositories/x')).status, 404);
  assert.match((await run(['user', 'rm', 'bob'])).stdout, /deleted user bob/);
  assert.equal((await s.api('GET', '/users/bob')).status, 404);
}

describe('management commands', { concurrency: true }, () => {
  it('local mode (--data-dir), beside a server on the same data dir', async () => {
    const s = await startServer();
    try {
      await scenario(s, ['--data-dir', s.dataDir]);
      const noUser = await granary(['token', 'create', 't', '--data-dir', s.dataDir]);
      assert.equal(noUser.code, 2);
      assert.match(noUser.stderr, /--user/);
    } finally {
      await s.close();
    }
  });

  it('remote mode (--url, --token, or GRANARY_URL and GRANARY_TOKEN)', async () => {
    const s = await startServer();
    try {
      // The token from the environment, the URL as a flag (the unknown-format test passes both as flags).
      await scenario(s, ['--url', s.url], { GRANARY_TOKEN: ADMIN_TOKEN });
      // The URL from the environment, no token: the server answers, and the CLI says what is missing.
      const anon = await granary(['repo', 'create', 'y', '-f', 'generic'], { env: { GRANARY_URL: s.url } });
      assert.equal(anon.code, 2);
      assert.match(anon.stderr, /--token or GRANARY_TOKEN/);
    } finally {
      await s.close();
    }
  });

  it('refuses a repository of an unknown format with exit 2 and a clear message, locally and remotely', async () => {
    const s = await startServer();
    try {
      for (const flags of [['--data-dir', s.dataDir], ['--url', s.url, '--token', ADMIN_TOKEN]]) {
        const r = await granary(['repo', 'create', 'y', '-f', 'nosuch', ...flags]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /^granary: .*unknown format "nosuch"/m);
        assert.equal(r.stdout, '');
        assert.ok(!r.stderr.includes('    at '), 'no stack trace');
      }
      const repos = await s.api<{ repositories: unknown[] }>('GET', '/repositories');
      assert.deepEqual(repos.body.repositories, []);
    } finally {
      await s.close();
    }
  });
});
