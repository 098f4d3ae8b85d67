/**
 * loadConfig: defaults, the YAML file, GRANARY_* variables and CLI overrides (in that order of precedence),
 * errors that name the key at fault — and repository declarations applied idempotently by a real server.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig, ConfigError, type LoadOptions } from '../../src/config/load.ts';
import { startServer } from '../helpers/server.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'granary-config-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let fileNo = 0;
/** Writes a YAML file into the temp dir and returns its path. */
async function yaml(text: string): Promise<string> {
  const path = join(dir, `config-${++fileNo}.yaml`);
  await writeFile(path, text);
  return path;
}

/** Loads with an empty environment and the temp dir as cwd unless told otherwise. */
function load(opts: LoadOptions = {}) {
  return loadConfig({ env: {}, cwd: dir, ...opts });
}

/** Asserts that loading fails with a ConfigError naming `key`; returns the error for further checks. */
function failsOn(key: string, opts: LoadOptions): ConfigError {
  let caught: unknown;
  try {
    load(opts);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError naming ${key}, got ${String(caught)}`);
  assert.equal(caught.key, key, caught.message);
  if (key) assert.match(caught.message, new RegExp(`config: ${key.replace(/\./g, '\\.')}:`));
  return caught;
}

describe('loadConfig defaults', () => {
  it('fills every default and resolves paths against the working directory', () => {
    const c = load();
    assert.equal(c.port, 8080);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.dataDir, join(dir, 'data'));
    assert.equal(c.database.driver, 'sqlite');
    assert.equal(c.database.path, join(dir, 'data', 'granary.db'));
    assert.equal(c.blobs.driver, 'fs');
    assert.equal(c.blobs.path, join(dir, 'data', 'blobs'));
    assert.equal(c.logLevel, 'info');
    assert.equal(c.rateLimit.enabled, false);
    assert.deepEqual(c.repositories, []);
    assert.equal(c.auth.adminToken, undefined);
    assert.equal(c.source, undefined);
  });

  it('puts the sqlite file under a relative dataDir given in the file', async () => {
    const c = load({ file: await yaml('dataDir: ./somewhere\n') });
    assert.equal(c.dataDir, join(dir, 'somewhere'));
    assert.equal(c.database.path, join(dir, 'somewhere', 'granary.db'));
  });
});

describe('loadConfig sources', () => {
  it('reads values from a YAML file', async () => {
    const file = await yaml(
      [
        'host: 0.0.0.0',
        'port: 9000',
        'baseUrl: https://registry.example.com/',
        'logLevel: warn',
        'database:',
        '  poolSize: 3',
        'limits:',
        '  uploadBytes: 4096',
        'repositories:',
        '  - name: files',
        '    format: generic',
        '    anonymousRead: true',
      ].join('\n'),
    );
    const c = load({ file });
    assert.equal(c.source, file);
    assert.equal(c.host, '0.0.0.0');
    assert.equal(c.port, 9000);
    assert.equal(c.baseUrl, 'https://registry.example.com', 'trailing slash removed');
    assert.equal(c.logLevel, 'warn');
    assert.equal(c.database.poolSize, 3);
    assert.equal(c.limits.uploadBytes, 4096);
    assert.equal(c.limits.jsonBodyBytes, 16 * 1024 * 1024, 'siblings keep their defaults');
    assert.deepEqual(c.repositories, [{ name: 'files', format: 'generic', kind: 'hosted', anonymousRead: true }]);
  });

  it('finds ./granary.yaml in the working directory without being told', async () => {
    const cwd = await mkdtemp(join(dir, 'cwd-'));
    await writeFile(join(cwd, 'granary.yaml'), 'port: 7001\n');
    const c = load({ cwd });
    assert.equal(c.port, 7001);
    assert.equal(c.source, join(cwd, 'granary.yaml'));
  });

  it('takes the file from GRANARY_CONFIG', async () => {
    const file = await yaml('port: 7002\n');
    assert.equal(load({ env: { GRANARY_CONFIG: file } }).port, 7002);
  });

  it('maps GRANARY_HOST, GRANARY_PORT, GRANARY_DATA_DIR and GRANARY_ADMIN_TOKEN', () => {
    const c = load({
      env: {
        GRANARY_HOST: '0.0.0.0',
        GRANARY_PORT: '9100',
        GRANARY_DATA_DIR: '/var/lib/granary',
        GRANARY_ADMIN_TOKEN: 'an-admin-token-of-some-length',
      },
    });
    assert.equal(c.host, '0.0.0.0');
    assert.equal(c.port, 9100);
    assert.equal(c.dataDir, '/var/lib/granary');
    assert.equal(c.database.path, '/var/lib/granary/granary.db');
    assert.equal(c.auth.adminToken, 'an-admin-token-of-some-length');
  });

  it('maps nested keys: GRANARY_RATE_LIMIT_ENABLED, GRANARY_LIMITS_UPLOAD_BYTES, GRANARY_AUTH_ADMIN_TOKEN', () => {
    const c = load({
      env: {
        GRANARY_RATE_LIMIT_ENABLED: 'true',
        GRANARY_RATE_LIMIT_REQUESTS_PER_MINUTE: '42',
        GRANARY_LIMITS_UPLOAD_BYTES: '2048',
        GRANARY_AUTH_ADMIN_TOKEN: 'long-form-admin-token-0000',
        GRANARY_DATABASE_DRIVER: 'sqlite',
      },
    });
    assert.equal(c.rateLimit.enabled, true);
    assert.equal(c.rateLimit.requestsPerMinute, 42);
    assert.equal(c.rateLimit.anonymousPerMinute, 600, 'siblings keep their defaults');
    assert.equal(c.limits.uploadBytes, 2048);
    assert.equal(c.auth.adminToken, 'long-form-admin-token-0000');
    assert.equal(load({ env: { GRANARY_RATE_LIMIT_ENABLED: 'off' } }).rateLimit.enabled, false);
  });

  it('takes GRANARY_REPOSITORIES as JSON', () => {
    const repos = [
      { name: 'a', format: 'generic' },
      { name: 'all', format: 'generic', kind: 'group', members: ['a'] },
    ];
    const c = load({ env: { GRANARY_REPOSITORIES: JSON.stringify(repos) } });
    assert.deepEqual(
      c.repositories.map((r) => [r.name, r.kind, r.members]),
      [
        ['a', 'hosted', undefined],
        ['all', 'group', ['a']],
      ],
    );
  });

  it('ranks the file below the environment, and the environment below CLI overrides', async () => {
    const file = await yaml('port: 1001\nhost: 10.0.0.1\ndataDir: /from/file\nlimits:\n  uploadBytes: 5000\n  headerBytes: 2048\n');
    const env = { GRANARY_PORT: '1002', GRANARY_DATA_DIR: '/from/env', GRANARY_LIMITS_UPLOAD_BYTES: '6000' };

    const fileOnly = load({ file });
    assert.deepEqual([fileOnly.port, fileOnly.host, fileOnly.dataDir], [1001, '10.0.0.1', '/from/file']);

    const withEnv = load({ file, env });
    assert.equal(withEnv.port, 1002);
    assert.equal(withEnv.host, '10.0.0.1', 'a key the environment does not set stays from the file');
    assert.equal(withEnv.dataDir, '/from/env');
    assert.equal(withEnv.limits.uploadBytes, 6000);
    assert.equal(withEnv.limits.headerBytes, 2048, 'a nested sibling from the file survives an env override');

    const withFlags = load({ file, env, overrides: { port: 1003, dataDir: '/from/flag' } });
    assert.equal(withFlags.port, 1003);
    assert.equal(withFlags.dataDir, '/from/flag');
    assert.equal(withFlags.limits.uploadBytes, 6000);
    assert.equal(withFlags.host, '10.0.0.1');
  });
});

describe('loadConfig errors name the key', () => {
  it('unknown top-level key', async () => {
    failsOn('prot', { file: await yaml('prot: 8080\n') });
  });

  it('unknown nested key', async () => {
    const e = failsOn('database.drvier', { file: await yaml('database:\n  drvier: sqlite\n') });
    assert.match(e.message, /unknown key/);
    failsOn('repositories.0.upstrem', { file: await yaml('repositories:\n  - name: a\n    format: generic\n    upstrem: x\n') });
  });

  it('wrong type in the file', async () => {
    failsOn('port', { file: await yaml('port: "abc"\n') });
    failsOn('rateLimit.enabled', { file: await yaml('rateLimit:\n  enabled: sometimes\n') });
  });

  it('wrong type in the environment names the variable too', () => {
    const e = failsOn('port', { env: { GRANARY_PORT: 'abc' } });
    assert.match(e.message, /GRANARY_PORT/);
    failsOn('port', { env: { GRANARY_PORT: '70000' } });
    failsOn('rateLimit.enabled', { env: { GRANARY_RATE_LIMIT_ENABLED: 'maybe' } });
    failsOn('repositories', { env: { GRANARY_REPOSITORIES: '[not json' } });
  });

  it('value outside an enum lists the allowed values', async () => {
    const e = failsOn('database.driver', { file: await yaml('database:\n  driver: mysql\n') });
    assert.match(e.message, /sqlite/);
    assert.match(e.message, /postgres/);
    failsOn('repositories.0.kind', { file: await yaml('repositories:\n  - name: a\n    format: generic\n    kind: mirror\n') });
  });

  it('baseUrl that is not a URL', async () => {
    failsOn('baseUrl', { file: await yaml('baseUrl: not a url\n') });
    failsOn('baseUrl', { file: await yaml('baseUrl: ftp://example.com\n') });
  });

  it('postgres without a url', async () => {
    failsOn('database.url', { file: await yaml('database:\n  driver: postgres\n') });
  });

  it('a short admin token', () => {
    failsOn('auth.adminToken', { env: { GRANARY_ADMIN_TOKEN: 'short' } });
  });

  it('duplicate repository names', async () => {
    const e = failsOn('repositories.1.name', {
      file: await yaml('repositories:\n  - name: a\n    format: generic\n  - name: a\n    format: generic\n'),
    });
    assert.match(e.message, /duplicate/);
  });

  it('invalid YAML', async () => {
    const file = await yaml('port: [8080\nhost: x\n');
    const e = failsOn('', { file });
    assert.match(e.message, /not valid YAML/);
    assert.ok(e.message.includes(file), 'the message names the file');
  });

  it('a YAML file that is not a mapping', async () => {
    const e = failsOn('', { file: await yaml('- a\n- b\n') });
    assert.match(e.message, /mapping/);
  });

  it('an explicit file that does not exist', () => {
    const missing = join(dir, 'nope.yaml');
    const e = failsOn('', { file: missing });
    assert.ok(e.message.includes(missing));
    failsOn('', { env: { GRANARY_CONFIG: missing } });
  });
});

describe('repository declarations at start', () => {
  type EventsPage = { events: { seq: number; kind: string; repo: string | null }[]; next: number };

  const declarations = (anonymousRead: boolean) => [
    // The group comes first: it must be applied after its members anyway.
    { name: 'all', format: 'generic', kind: 'group', members: ['local', 'extra'], writeMember: 'local' },
    { name: 'local', format: 'generic' },
    { name: 'extra', format: 'generic', anonymousRead },
  ];

  async function events(s: Awaited<ReturnType<typeof startServer>>): Promise<EventsPage['events']> {
    const res = await s.api<EventsPage>('GET', '/events?limit=1000');
    assert.equal(res.status, 200);
    return res.body.events;
  }

  it('are applied once, updated on change, and never repeated', async () => {
    const dataDir = await mkdtemp(join(dir, 'decl-'));

    let s = await startServer({ dataDir, config: { repositories: declarations(false) } });
    let first: EventsPage['events'];
    try {
      const created = (await events(s)).filter((e) => e.kind === 'repository.created').map((e) => e.repo);
      assert.deepEqual(created.sort(), ['all', 'extra', 'local']);
      const repos = await s.api<{ repositories: { name: string; kind: string; members?: string[] }[] }>('GET', '/repositories');
      const group = repos.body.repositories.find((r) => r.name === 'all');
      assert.deepEqual(group?.members, ['local', 'extra']);
      // The group really works: a write through it lands in its writeMember.
      const put = await s.fetch('/generic/all/f.txt', { method: 'PUT', body: 'x' });
      assert.equal(put.status, 201);
      assert.equal((await s.fetch('/generic/local/f.txt')).status, 200);
      first = await events(s);
    } finally {
      await s.close();
    }

    // Same config, same data dir: nothing changes, no event is appended.
    s = await startServer({ dataDir, config: { repositories: declarations(false) } });
    try {
      assert.deepEqual(await events(s), first);
    } finally {
      await s.close();
    }

    // One declaration changed: exactly one repository.updated event, for that repository.
    s = await startServer({ dataDir, config: { repositories: declarations(true) } });
    try {
      const now = await events(s);
      const added = now.slice(first.length);
      assert.deepEqual(
        added.map((e) => [e.kind, e.repo]),
        [['repository.updated', 'extra']],
      );
      const extra = await s.api<{ anonymousRead: boolean }>('GET', '/repositories/extra');
      assert.equal(extra.body.anonymousRead, true);
      assert.equal((await s.fetch('/generic/extra/none', { auth: null })).status, 404, 'extra is now readable anonymously');
      assert.equal((await s.fetch('/generic/local/f.txt', { auth: null })).status, 401, 'local is still private');
    } finally {
      await s.close();
    }
    await rm(dataDir, { recursive: true, force: true });
  });

  it('fail startup with a ConfigError naming the member list of an invalid group', async () => {
    const dataDir = await mkdtemp(join(dir, 'decl-bad-'));
    try {
      await assert.rejects(
        startServer({
          dataDir,
          config: {
            repositories: [
              { name: 'ok', format: 'generic' },
              { name: 'broken', format: 'generic', kind: 'group', members: ['ok', 'missing'] },
            ],
          },
        }),
        (e: unknown) => {
          assert.ok(e instanceof ConfigError, String(e));
          assert.equal(e.key, 'repositories.1.members');
          assert.match(e.message, /missing/);
          return true;
        },
      );
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
