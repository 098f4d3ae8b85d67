/**
 * A thin adapter that lets Kysely's SqliteDialect drive Node's built-in `node:sqlite` (no native addon to
 * build). Kysely only needs `prepare(sql)` returning a statement with `reader`, `all`, `run` and `iterate`.
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { SqliteAdapter, SqliteDialect, type DialectAdapter, type SqliteDatabase, type SqliteStatement } from 'kysely';

type Param = null | number | bigint | string | NodeJS.ArrayBufferView;

function toParams(parameters: ReadonlyArray<unknown>): Param[] {
  return parameters.map((p) => {
    if (p === undefined) return null;
    if (typeof p === 'boolean') return p ? 1 : 0;
    if (p instanceof Date) return p.toISOString();
    return p as Param;
  });
}

class Statement implements SqliteStatement {
  readonly reader: boolean;
  readonly #stmt: StatementSync;
  constructor(stmt: StatementSync) {
    this.#stmt = stmt;
    this.reader = stmt.columns().length > 0;
  }
  all(parameters: ReadonlyArray<unknown>): unknown[] {
    return this.#stmt.all(...toParams(parameters));
  }
  run(parameters: ReadonlyArray<unknown>) {
    const r = this.#stmt.run(...toParams(parameters));
    return { changes: r.changes, lastInsertRowid: r.lastInsertRowid };
  }
  iterate(parameters: ReadonlyArray<unknown>): IterableIterator<unknown> {
    return this.#stmt.iterate(...toParams(parameters)) as IterableIterator<unknown>;
  }
}

/** Prepared statements kept per SQL text: preparing dominates the cost of the small queries a request makes. */
const STATEMENT_CACHE_SIZE = 500;

/** Opens (creating if needed) a SQLite file in WAL mode with foreign keys on. */
export function openSqlite(path: string): SqliteDatabase {
  const db = new DatabaseSync(path);
  // First: switching to WAL needs a moment of exclusive access, which another process may hold.
  db.exec('PRAGMA busy_timeout = 5000');
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  db.exec('PRAGMA foreign_keys = ON');
  const cache = new Map<string, Statement>();
  return {
    prepare(text: string) {
      // Kysely opens transactions with a deferred `begin`: two processes could then both read (say, the list of
      // applied migrations) before either writes, and the later writer fails with SQLITE_BUSY_SNAPSHOT, which
      // busy_timeout cannot wait out. `begin immediate` takes the write lock first, so writers queue instead.
      const sql = /^begin$/i.test(text) ? 'begin immediate' : text;
      let st = cache.get(sql);
      if (st) {
        // Refresh its place: the Map's order is the eviction order.
        cache.delete(sql);
      } else {
        st = new Statement(db.prepare(sql));
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
      }
      cache.set(sql, st);
      return st;
    },
    close: () => {
      cache.clear();
      db.close();
    },
  };
}

/**
 * SQLite's DDL is transactional, but Kysely's adapter says otherwise, so its migrator would run each migration
 * without a transaction — and two processes opening a new database at once would both apply the first migration.
 * Declared transactional, the whole migration run is one `begin immediate` transaction: the second process waits
 * for the first, then finds nothing left to do.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

export class NodeSqliteDialect extends SqliteDialect {
  constructor(path: string) {
    super({ database: openSqlite(path) });
  }
  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}
