/**
 * Replication: where a replica stands in the feed it follows. One row per followed feed (today: 'primary').
 * Frozen once released; Kysely<any> on purpose (migrations must not depend on today's table types).
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('replication_position')
    .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
    /** URL of the feed the position belongs to (informational: the key, not the URL, authenticates it). */
    .addColumn('source', 'text', (c) => c.notNull())
    /** Last primary event sequence number applied. */
    .addColumn('seq', 'bigint', (c) => c.notNull())
    /** Hash chain value at `seq` (hex sha256), to detect forks. */
    .addColumn('chain', 'varchar(64)', (c) => c.notNull())
    .addColumn('epoch', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('replication_position').ifExists().execute();
}
