/**
 * A throwaway PostgreSQL database per test file, on the server at GRANARY_TEST_PG_URL (default: the local
 * server, trust auth). Tests that need it skip with a visible reason when no server answers; `.ci/run` starts
 * one, so CI never skips.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

const ADMIN_URL = process.env.GRANARY_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestPg {
  url: string;
  drop(): Promise<void>;
}

/** Creates a fresh database, or returns a skip reason when PostgreSQL is not reachable. */
export async function createTestDatabase(): Promise<TestPg | string> {
  const admin = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
  } catch (e) {
    return `PostgreSQL not reachable at ${ADMIN_URL} (${(e as Error).message}); set GRANARY_TEST_PG_URL or start it`;
  }
  const name = `granary_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin.query(`create database ${name}`);
  await admin.end();
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}
