/**
 * Builds the Kysely instance for the configured dialect and runs migrations.
 * Code asks `db.caps` what the dialect can do; it never asks "are you PostgreSQL?".
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, Migrator, SqliteDialect, PostgresDialect, type Transaction } from 'kysely';
import type { Database } from './tables.ts';
import { openSqlite } from './sqlite.ts';
import { migrationProvider } from './migrations/index.ts';

export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;
/** Anything queries can run on: the database or a transaction. */
export type Queryable = Kysely<Database>;

export interface DbCapabilities {
  dialect: 'sqlite' | 'postgres';
  /** Row locks (`SELECT … FOR UPDATE`) exist; SQLite serialises writers instead. */
  rowLocks: boolean;
}

export interface MetaDb {
  db: Db;
  caps: DbCapabilities;
  close(): Promise<void>;
}

export type DbOptions =
  | { driver: 'sqlite'; path: string }
  | { driver: 'postgres'; url: string; poolSize?: number };

export async function openDb(opts: DbOptions): Promise<MetaDb> {
  let db: Db;
  let caps: DbCapabilities;
  if (opts.driver === 'sqlite') {
    if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true });
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: openSqlite(opts.path) }) });
    caps = { dialect: 'sqlite', rowLocks: false };
  } else {
    const pg = await import('pg');
    // int8 (bigint) columns hold sizes and sequence numbers below 2^53: return them as numbers.
    pg.default.types.setTypeParser(20, (v: string) => Number(v));
    const pool = new pg.default.Pool({ connectionString: opts.url, max: opts.poolSize ?? 10 });
    // An idle connection dropped by the server (restart, failover) must not crash the process: the pool
    // discards it and the next query opens a new one.
    pool.on('error', () => {});
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    caps = { dialect: 'postgres', rowLocks: true };
  }
  await migrate(db);
  return { db, caps, close: () => db.destroy() };
}

export async function migrate(db: Kysely<any>): Promise<void> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message ?? error}`);
  }
}

/** Runs `fn` in a transaction; everything it writes (and the events it appends) commits together. */
export function withTx<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return db.transaction().execute(fn);
}

export function now(): string {
  return new Date().toISOString();
}
