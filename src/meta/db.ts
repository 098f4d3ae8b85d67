/**
 * Builds the Kysely instance for the configured dialect and runs migrations.
 * Code asks `db.caps` what the dialect can do; it never asks "are you PostgreSQL?".
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, Migrator, PostgresAdapter, PostgresDialect, sql, type Transaction } from 'kysely';
import type { Database } from './tables.ts';
import { NodeSqliteDialect } from './sqlite.ts';
import { migrationProvider } from './migrations/index.ts';

export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;
/** Anything queries can run on: the database or a transaction. */
export type Queryable = Kysely<Database>;

export interface DbCapabilities {
  dialect: 'sqlite' | 'postgres';
  /** Row locks (`SELECT … FOR UPDATE`) exist; SQLite serialises writers instead. */
  rowLocks: boolean;
  /**
   * How SQL reads one key of a JSON text column: SQLite's json1 functions (`json_type`, `json_extract`, `->`), or
   * PostgreSQL's operators on a `::json` cast (text-preserving, unlike jsonb, so a number keeps its JSON spelling).
   */
  jsonKeys: 'json1' | 'pg-json';
}

const SQLITE_CAPS: DbCapabilities = Object.freeze({ dialect: 'sqlite', rowLocks: false, jsonKeys: 'json1' });
const POSTGRES_CAPS: DbCapabilities = Object.freeze({ dialect: 'postgres', rowLocks: true, jsonKeys: 'pg-json' });

/** The capabilities behind a database or a transaction, for queries that are handed `db` rather than the MetaDb. */
export function capsOf(db: Kysely<any>): DbCapabilities {
  return db.getExecutor().adapter instanceof PostgresAdapter ? POSTGRES_CAPS : SQLITE_CAPS;
}

export interface MetaDb {
  db: Db;
  caps: DbCapabilities;
  close(): Promise<void>;
}

export type DbOptions =
  | { driver: 'sqlite'; path: string }
  | { driver: 'postgres'; url: string; poolSize?: number } & PoolTimeouts;

/** PostgreSQL pool timeouts, in seconds; 0 = none. */
export interface PoolTimeouts {
  /** Idle pooled connections are closed after this (default 30). */
  idleTimeoutSeconds?: number;
  /** Opening a connection fails after this instead of hanging when the server is unreachable (default 10). */
  connectTimeoutSeconds?: number;
  /** `statement_timeout` of every connection: the server cancels longer statements (default none). */
  statementTimeoutSeconds?: number;
}

export async function openDb(opts: DbOptions): Promise<MetaDb> {
  let db: Db;
  let caps: DbCapabilities;
  if (opts.driver === 'sqlite') {
    if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true });
    db = new Kysely<Database>({ dialect: new NodeSqliteDialect(opts.path) });
    caps = SQLITE_CAPS;
  } else {
    const pg = await import('pg');
    // int8 (bigint) columns hold sizes and sequence numbers below 2^53: return them as numbers.
    pg.default.types.setTypeParser(20, (v: string) => Number(v));
    const statementMs = (opts.statementTimeoutSeconds ?? 0) * 1000;
    const pool = new pg.default.Pool({
      connectionString: opts.url,
      max: opts.poolSize ?? 10,
      idleTimeoutMillis: (opts.idleTimeoutSeconds ?? 30) * 1000,
      connectionTimeoutMillis: (opts.connectTimeoutSeconds ?? 10) * 1000,
      // Sent as a startup parameter of each connection, so it needs no extra round trip.
      ...(statementMs > 0 ? { statement_timeout: statementMs } : {}),
    });
    // An idle connection dropped by the server (restart, failover) must not crash the process: the pool
    // discards it and the next query opens a new one.
    pool.on('error', () => {});
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    caps = POSTGRES_CAPS;
  }
  try {
    await migrate(db);
  } catch (e) {
    await db.destroy(); // an unreachable server or a failed migration must not leave a pool behind
    throw e;
  }
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

/**
 * Serialises transactions that take the same `key` across every node: a transaction-scoped advisory lock on
 * PostgreSQL; on SQLite every write transaction already holds the database's one write lock (`begin immediate`).
 */
export async function serialize(tx: Tx, key: number): Promise<void> {
  if (tx.getExecutor().adapter instanceof PostgresAdapter) await sql`select pg_advisory_xact_lock(${key})`.execute(tx);
}

/** True for a unique-constraint violation on either dialect (PostgreSQL 23505, SQLite's UNIQUE constraint). */
export function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown } | null;
  return err?.code === '23505' || (typeof err?.message === 'string' && err.message.includes('UNIQUE constraint failed'));
}

export function now(): string {
  return new Date().toISOString();
}
