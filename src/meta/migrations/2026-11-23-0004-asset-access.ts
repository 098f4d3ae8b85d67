/**
 * When a cached proxy asset was last read, so proxy retention can remove what nobody pulled for N days
 * (src/repos/proxy/retention.ts). Nullable: a never-read asset counts from its updated_at. Written by a throttled
 * UPDATE (src/repos/proxy/access.ts), never through an event — reads must not feed replication.
 * Frozen once released; Kysely<any> on purpose (migrations must not depend on today's table types).
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // ISO-8601 UTC text, like every other timestamp column (0001), so it compares with updated_at on both dialects.
  await db.schema.alterTable('assets').addColumn('accessed_at', 'varchar(32)').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('assets').dropColumn('accessed_at').execute();
}
