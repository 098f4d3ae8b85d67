/**
 * Two nodes starting at the same moment on an empty database both run the admin bootstrap. Neither may crash on
 * the other's rows, exactly one prints a first-start token, and a shared GRANARY_ADMIN_TOKEN ends up stored once.
 * Each node is its own process (a migration, a first user and a first token all race), on PostgreSQL and on one
 * SQLite file.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { openDb, type DbOptions, type MetaDb } from '../../src/meta/db.ts';
import { AccountService } from '../../src/auth/accounts.ts';
import { countUsers, listTokens } from '../../src/meta/users.ts';
import { createTestDatabase } from '../helpers/pg.ts';

const run = promisify(execFile);

type Target = { name: string; open: () => Promise<{ options: DbOptions; cleanup: () => Promise<void> } | string> };

const targets: Target[] = [
  {
    name: 'PostgreSQL',
    async open() {
      const db = await createTestDatabase();
      if (typeof db === 'string') return db;
      return { options: { driver: 'postgres', url: db.url, poolSize: 4 }, cleanup: db.drop };
    },
  },
  {
    name: 'SQLite',
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'granary-bootstrap-race-'));
      return { options: { driver: 'sqlite', path: join(dir, 'meta.db') }, cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  },
];

for (const target of targets) {
  describe(`admin bootstrap racing on ${target.name}`, () => {
    const cleanups: (() => Promise<void>)[] = [];
    after(async () => {
      for (const c of cleanups.reverse()) await c();
    });

    /** Starts `nodes` processes at once on one fresh database, each bootstrapping; returns their results. */
    async function race(t: { skip: (reason: string) => void }, nodes: number, token?: string): Promise<{ results: unknown[]; meta: MetaDb; accounts: AccountService } | null> {
      const opened = await target.open();
      if (typeof opened === 'string') {
        t.skip(opened);
        return null;
      }
      cleanups.push(opened.cleanup);
      const node = new URL('./fixtures/bootstrap-node.ts', import.meta.url).pathname;
      const runs = await Promise.all(
        Array.from({ length: nodes }, () => run(process.execPath, [node, JSON.stringify(opened.options), token ?? ''], { encoding: 'utf8' })),
      );
      const meta = await openDb(opened.options);
      cleanups.push(() => meta.close());
      return { results: runs.map((r) => JSON.parse(r.stdout) as unknown), meta, accounts: new AccountService(meta) };
    }

    it('without GRANARY_ADMIN_TOKEN: no node fails, exactly one prints a first-start token', async (t) => {
      for (let round = 0; round < 2; round++) {
        const c = await race(t, 3);
        if (!c) return;
        assert.equal(c.results.filter((r) => r !== null).length, 1, `round ${round}: ${JSON.stringify(c.results)}`);
        assert.equal(await countUsers(c.meta.db), 1);
        const admin = await c.accounts.getUser('admin');
        assert.equal((await listTokens(c.meta.db, admin.id)).length, 1);
      }
    });

    it('with the same GRANARY_ADMIN_TOKEN on every node: no node fails, the token is stored once and works', async (t) => {
      for (let round = 0; round < 2; round++) {
        const token = `shared-admin-token-${round}-0123456789abcdef`;
        const c = await race(t, 3, token);
        if (!c) return;
        assert.deepEqual(c.results, [null, null, null]);
        const admin = await c.accounts.getUser('admin');
        const tokens = (await listTokens(c.meta.db, admin.id)).filter((x) => !x.revokedAt);
        assert.equal(tokens.length, 1, `round ${round}: ${JSON.stringify(tokens)}`);
        // A later start with the same token changes nothing.
        assert.equal(await c.accounts.bootstrapAdmin(token), null);
        assert.equal((await listTokens(c.meta.db, admin.id)).filter((x) => !x.revokedAt).length, 1);
      }
    });
  });
}
