/**
 * Metadata layer, on SQLite and on PostgreSQL alike: migrations from an empty database, and the event log —
 * one event per change, in order, gap-free even when writers race.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { openDb, withTx, type MetaDb } from '../../src/meta/db.ts';
import { insertRepository, deleteRepository } from '../../src/meta/repos.ts';
import { AssetExistsError, putAsset, deleteAsset, listAssets } from '../../src/meta/assets.ts';
import { setTag, deleteTag, listTags } from '../../src/meta/tags.ts';
import { listEvents, lastEventSeq } from '../../src/meta/events.ts';
import { createTestDatabase } from '../helpers/pg.ts';

interface Dialect {
  name: 'sqlite' | 'postgres';
  /** Opens the same database again (each call a new connection), or a skip reason. */
  setup(): Promise<{ open(): Promise<MetaDb>; cleanup(): Promise<void> } | string>;
}

const DIALECTS: Dialect[] = [
  {
    name: 'sqlite',
    async setup() {
      const dir = await mkdtemp(join(tmpdir(), 'granary-meta-'));
      return { open: () => openDb({ driver: 'sqlite', path: join(dir, 'g.db') }), cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'postgres',
    async setup() {
      const db = await createTestDatabase();
      if (typeof db === 'string') return db;
      return { open: () => openDb({ driver: 'postgres', url: db.url, poolSize: 5 }), cleanup: () => db.drop() };
    },
  },
];

const only = process.env.GRANARY_TEST_DIALECTS?.split(',');
for (const dialect of DIALECTS.filter((d) => !only || only.includes(d.name))) {
  const ready = await dialect.setup();
  describe(`metadata (${dialect.name})`, { skip: typeof ready === 'string' ? ready : false }, () => {
    if (typeof ready === 'string') return;
    runSuite(dialect.name, ready);
  });
}

function runSuite(name: Dialect['name'], env: { open(): Promise<MetaDb>; cleanup(): Promise<void> }) {
  let m: MetaDb;
  before(async () => {
    m = await env.open();
  });
  after(async () => {
    await m.close();
    await env.cleanup();
  });

  it('migrates an empty database to the latest schema, and migrating again is a no-op', async () => {
    const tables =
      name === 'sqlite'
        ? await sql<{ name: string }>`select name from sqlite_master where type = 'table' order by name`.execute(m.db)
        : await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = 'public' order by 1`.execute(m.db);
    const names = tables.rows.map((r) => r.name);
    for (const t of ['repositories', 'assets', 'tags', 'uploads', 'users', 'tokens', 'role_bindings', 'events', 'settings', 'trusted_keys', 'replication_position', 'kysely_migration']) {
      assert.ok(names.includes(t), `table ${t} exists`);
    }
    const applied = await sql<{ name: string }>`select name from kysely_migration`.execute(m.db);
    assert.deepEqual(applied.rows.map((r) => r.name), ['2026-11-23-0001-initial', '2026-11-23-0002-trusted-keys', '2026-11-23-0003-replication', '2026-11-23-0004-asset-access']);
    await m.close();
    m = await env.open();
    const again = await sql<{ name: string }>`select name from kysely_migration`.execute(m.db);
    assert.equal(again.rows.length, 4);
  });

  it('uses WAL journaling (sqlite)', { skip: name !== 'sqlite' && 'SQLite only' }, async () => {
    const r = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(m.db);
    assert.equal(r.rows[0].journal_mode, 'wal');
  });

  it('appends exactly one event per change, in order, in the same transaction', async () => {
    const start = await lastEventSeq(m.db);
    const repo = await withTx(m.db, (tx) => insertRepository(tx, { name: 'r', format: 'generic', kind: 'hosted', anonymousRead: false, config: {} }, 'alice'));
    const ref = { id: repo.id, name: repo.name };
    await withTx(m.db, (tx) => putAsset(tx, { repoId: repo.id, repo: 'r', path: 'a', digest: 'sha256:' + 'a'.repeat(64), size: 1 }, 'alice'));
    await withTx(m.db, (tx) => putAsset(tx, { repoId: repo.id, repo: 'r', path: 'a', digest: 'sha256:' + 'b'.repeat(64), size: 2 }, 'bob'));
    await withTx(m.db, (tx) => setTag(tx, ref, 'img', 'latest', 'sha256:' + 'b'.repeat(64), 'bob'));
    await withTx(m.db, (tx) => setTag(tx, ref, 'img', 'latest', 'sha256:' + 'b'.repeat(64), 'bob')); // unchanged: no event
    await withTx(m.db, (tx) => deleteTag(tx, ref, 'img', 'latest', 'bob'));
    await withTx(m.db, (tx) => deleteAsset(tx, ref, 'a', 'carol'));
    await withTx(m.db, (tx) => deleteAsset(tx, ref, 'a', 'carol')); // already gone: no event
    const events = await listEvents(m.db, { since: start });
    assert.deepEqual(
      events.map((e) => [e.seq - start, e.kind, e.path, e.actor]),
      [
        [1, 'repository.created', null, 'alice'],
        [2, 'asset.put', 'a', 'alice'],
        [3, 'asset.put', 'a', 'bob'],
        [4, 'tag.set', 'img:latest', 'bob'],
        [5, 'tag.deleted', 'img:latest', 'bob'],
        [6, 'asset.deleted', 'a', 'carol'],
      ],
    );
    assert.equal(events[2].data?.previous, 'sha256:' + 'a'.repeat(64));
  });

  it('rolls back the change and its event together', async () => {
    const before = await lastEventSeq(m.db);
    const repo = (await m.db.selectFrom('repositories').selectAll().where('name', '=', 'r').executeTakeFirstOrThrow());
    await assert.rejects(
      withTx(m.db, async (tx) => {
        await putAsset(tx, { repoId: Number(repo.id), repo: 'r', path: 'doomed', digest: 'sha256:' + 'c'.repeat(64), size: 3 }, 'x');
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await lastEventSeq(m.db), before);
    assert.equal((await listAssets(m.db, { repoIds: [Number(repo.id)], prefix: 'doomed' })).length, 0);
  });

  it('keeps the sequence gap-free and unique under racing writers', async () => {
    const before = await lastEventSeq(m.db);
    const repo = await withTx(m.db, (tx) => insertRepository(tx, { name: 'race', format: 'generic', kind: 'hosted', anonymousRead: false, config: {} }, null));
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        withTx(m.db, (tx) => putAsset(tx, { repoId: repo.id, repo: 'race', path: `p${i}`, digest: 'sha256:' + 'd'.repeat(64), size: i }, null)),
      ),
    );
    const events = await listEvents(m.db, { since: before, limit: 1000 });
    assert.equal(events.length, 51);
    events.forEach((e, i) => assert.equal(e.seq, before + 1 + i));
  });

  it('lists tags with pagination and assets by prefix with LIKE wildcards taken literally', async () => {
    const repo = await withTx(m.db, (tx) => insertRepository(tx, { name: 'tags', format: 'generic', kind: 'hosted', anonymousRead: false, config: {} }, null));
    const ref = { id: repo.id, name: repo.name };
    for (const t of ['b', 'a', 'd', 'c']) await withTx(m.db, (tx) => setTag(tx, ref, 's', t, 'x', null));
    assert.deepEqual((await listTags(m.db, repo.id, 's', { limit: 2 })).map((t) => t.name), ['a', 'b']);
    assert.deepEqual((await listTags(m.db, repo.id, 's', { last: 'b' })).map((t) => t.name), ['c', 'd']);
    for (const p of ['100%/x', '100x/y', 'a_b/z', 'axb/z']) {
      await withTx(m.db, (tx) => putAsset(tx, { repoId: repo.id, repo: 'tags', path: p, digest: 'sha256:' + 'e'.repeat(64), size: 1 }, null));
    }
    assert.deepEqual((await listAssets(m.db, { repoIds: [repo.id], prefix: '100%' })).map((a) => a.path), ['100%/x']);
    assert.deepEqual((await listAssets(m.db, { repoIds: [repo.id], prefix: 'a_b' })).map((a) => a.path), ['a_b/z']);
  });

  it('concurrent first writes of one path leave one asset and no error', async () => {
    const repo = await withTx(m.db, (tx) => insertRepository(tx, { name: 'same-path', format: 'generic', kind: 'hosted', anonymousRead: false, config: {} }, null));
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        withTx(m.db, (tx) => putAsset(tx, { repoId: repo.id, repo: repo.name, path: 'same', digest: 'sha256:' + String(i % 10).repeat(64), size: i }, null)),
      ),
    );
    assert.deepEqual(results.filter((r) => r.status === 'rejected'), []);
    assert.equal((await listAssets(m.db, { repoIds: [repo.id] })).length, 1);
  });

  it('concurrent create-only writes of one path: exactly one wins, the others get AssetExistsError', async () => {
    const repo = await withTx(m.db, (tx) => insertRepository(tx, { name: 'create-only', format: 'generic', kind: 'hosted', anonymousRead: false, config: {} }, null));
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        withTx(m.db, (tx) => putAsset(tx, { repoId: repo.id, repo: repo.name, path: 'v1.0.0', digest: 'sha256:' + String(i % 10).repeat(64), size: i, ifAbsent: true }, null)),
      ),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof AssetExistsError, String(r.reason));
    const [kept] = await listAssets(m.db, { repoIds: [repo.id] });
    const won = results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ asset: { digest: string } }>;
    assert.equal(kept.digest, won.value.asset.digest, 'the stored asset is the winner’s');
    const puts = (await listEvents(m.db, { repo: repo.name })).filter((e) => e.kind === 'asset.put');
    assert.equal(puts.length, 1, 'losers appended no event');
  });

  it('fills pages when filtering by metadata, and pages never skip a match', async () => {
    const repo = await withTx(m.db, (tx) => insertRepository(tx, { name: 'meta-pages', format: 'generic', kind: 'hosted', anonymousRead: false, config: {} }, null));
    for (let i = 0; i < 12; i++) {
      const os = i % 3 === 0 ? 'linux' : 'windows';
      await withTx(m.db, (tx) => putAsset(tx, { repoId: repo.id, repo: repo.name, path: `f${i}`, digest: 'sha256:' + 'f'.repeat(64), size: i, metadata: { os, n: i } }, null));
    }
    const seen: string[] = [];
    let after: number | undefined;
    for (let page = 0; page < 10; page++) {
      const rows = await listAssets(m.db, { repoIds: [repo.id], metadata: { os: 'linux' }, limit: 2, afterId: after });
      seen.push(...rows.map((r) => r.path));
      if (rows.length < 2) break;
      after = rows[rows.length - 1].id;
    }
    assert.deepEqual(seen, ['f0', 'f3', 'f6', 'f9']);
    assert.deepEqual((await listAssets(m.db, { repoIds: [repo.id], metadata: { n: 4 } })).map((r) => r.path), ['f4']);
  });

  it('deleting a repository removes its assets and tags and logs one event', async () => {
    const before = await lastEventSeq(m.db);
    const repo = (await m.db.selectFrom('repositories').selectAll().where('name', '=', 'tags').executeTakeFirstOrThrow());
    assert.equal(await withTx(m.db, (tx) => deleteRepository(tx, 'tags', null)), true);
    assert.equal((await listAssets(m.db, { repoIds: [Number(repo.id)] })).length, 0);
    assert.equal((await listTags(m.db, Number(repo.id), 's')).length, 0);
    const events = await listEvents(m.db, { since: before });
    assert.deepEqual(events.map((e) => e.kind), ['repository.deleted']);
  });
}
