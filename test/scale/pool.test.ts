/**
 * PostgreSQL pool settings reach the connections: `database.statementTimeoutSeconds` (from the environment,
 * through the config loader and openMeta) becomes every connection's statement_timeout and cancels a longer
 * statement; `database.connectTimeoutSeconds` turns a server that accepts but never answers into an error
 * instead of a hang. Skips without PostgreSQL.
 */
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { sql } from 'kysely';
import { loadConfig } from '../../src/config/load.ts';
import { openMeta } from '../../src/server/bootstrap.ts';
import { openDb } from '../../src/meta/db.ts';
import { createTestDatabase, type TestPg } from '../helpers/pg.ts';

const db = await createTestDatabase();
if (typeof db !== 'string') after(() => db.drop());

describe('PostgreSQL pool settings', { skip: typeof db === 'string' ? db : false }, () => {
  const pg = db as TestPg;

  it('applies statementTimeoutSeconds from GRANARY_* to every pooled connection', async () => {
    const config = loadConfig({
      base: { dataDir: '/nonexistent', logLevel: 'silent' },
      env: {
        GRANARY_DATABASE_DRIVER: 'postgres',
        GRANARY_DATABASE_URL: pg.url,
        GRANARY_DATABASE_POOL_SIZE: '2',
        GRANARY_DATABASE_STATEMENT_TIMEOUT_SECONDS: '1',
        GRANARY_DATABASE_IDLE_TIMEOUT_SECONDS: '5',
      },
    });
    assert.equal(config.database.statementTimeoutSeconds, 1);
    assert.equal(config.database.idleTimeoutSeconds, 5);
    const meta = await openMeta(config);
    try {
      // Two connections at once: both carry the setting.
      const shown = await Promise.all(
        [0, 1].map(() => meta.db.transaction().execute(async (tx) => (await sql<{ statement_timeout: string }>`show statement_timeout`.execute(tx)).rows[0].statement_timeout)),
      );
      assert.deepEqual(shown, ['1s', '1s']);
      await assert.rejects(sql`select pg_sleep(3)`.execute(meta.db), /statement timeout/);
      // The pool survives the cancelled statement.
      assert.equal((await sql<{ n: number }>`select 1 as n`.execute(meta.db)).rows[0].n, 1);
    } finally {
      await meta.close();
    }
  });

  it('has no statement timeout by default', async () => {
    const meta = await openDb({ driver: 'postgres', url: pg.url, poolSize: 1 });
    try {
      assert.equal((await sql<{ statement_timeout: string }>`show statement_timeout`.execute(meta.db)).rows[0].statement_timeout, '0');
    } finally {
      await meta.close();
    }
  });

  it('gives up connecting after connectTimeoutSeconds', async () => {
    // Accepts TCP connections and never answers the startup message, like a hung server or a black-holed route.
    const sockets = new Set<Socket>();
    const silent = createServer((s) => void sockets.add(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as AddressInfo).port;
    try {
      await assert.rejects(
        openDb({ driver: 'postgres', url: `postgres://postgres@127.0.0.1:${port}/none`, poolSize: 1, connectTimeoutSeconds: 1 }),
        /timeout/i,
      );
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});
