/**
 * Trusted public keys per repository (typed binary artifacts: signatures). Frozen once released.
 * Uses Kysely<any> on purpose (migrations must not depend on today's table types).
 */
import type { Kysely } from 'kysely';
import { withId } from './util.ts';

export async function up(db: Kysely<any>): Promise<void> {
  await withId(db, db.schema.createTable('trusted_keys'))
    .addColumn('repo_id', 'integer', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
    .addColumn('key_id', 'varchar(128)', (c) => c.notNull())
    .addColumn('algorithm', 'varchar(32)', (c) => c.notNull())
    .addColumn('fingerprint', 'varchar(64)', (c) => c.notNull())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addUniqueConstraint('trusted_keys_repo_key', ['repo_id', 'key_id'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('trusted_keys').ifExists().execute();
}
