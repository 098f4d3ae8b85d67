/**
 * Initial schema. Frozen: never edit after release — add a new migration instead.
 * Uses Kysely<any> on purpose (migrations must not depend on today's table types).
 */
import type { Kysely } from 'kysely';
import { withId } from './util.ts';

export async function up(db: Kysely<any>): Promise<void> {
  await withId(db, db.schema.createTable('repositories'))
    .addColumn('name', 'varchar(128)', (c) => c.notNull().unique())
    .addColumn('format', 'varchar(32)', (c) => c.notNull())
    .addColumn('kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('config', 'text', (c) => c.notNull())
    .addColumn('anonymous_read', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .execute();

  await withId(db, db.schema.createTable('assets'))
    .addColumn('repo_id', 'integer', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('digest', 'varchar(200)', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('media_type', 'varchar(255)')
    .addColumn('metadata', 'text', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .addUniqueConstraint('assets_repo_path', ['repo_id', 'path'])
    .execute();
  await db.schema.createIndex('assets_digest').on('assets').column('digest').execute();

  await withId(db, db.schema.createTable('tags'))
    .addColumn('repo_id', 'integer', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('name', 'varchar(255)', (c) => c.notNull())
    .addColumn('target', 'varchar(255)', (c) => c.notNull())
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .addUniqueConstraint('tags_repo_scope_name', ['repo_id', 'scope', 'name'])
    .execute();
  await db.schema.createIndex('tags_target').on('tags').columns(['repo_id', 'target']).execute();

  await db.schema
    .createTable('uploads')
    .addColumn('id', 'varchar(128)', (c) => c.primaryKey())
    .addColumn('repo_id', 'integer', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('expires_at', 'varchar(32)', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('uploads_expires').on('uploads').column('expires_at').execute();

  await withId(db, db.schema.createTable('users'))
    .addColumn('name', 'varchar(128)', (c) => c.notNull().unique())
    .addColumn('password_hash', 'text')
    .addColumn('is_admin', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('tokens')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('name', 'varchar(128)', (c) => c.notNull())
    .addColumn('secret_hash', 'varchar(128)', (c) => c.notNull())
    .addColumn('read_only', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('expires_at', 'varchar(32)')
    .addColumn('revoked_at', 'varchar(32)')
    .addColumn('last_used_at', 'varchar(32)')
    .addUniqueConstraint('tokens_secret_hash', ['secret_hash'])
    .execute();
  await db.schema.createIndex('tokens_user').on('tokens').column('user_id').execute();

  await withId(db, db.schema.createTable('role_bindings'))
    .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('repository', 'varchar(128)', (c) => c.notNull())
    .addColumn('role', 'varchar(16)', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addUniqueConstraint('role_bindings_user_repo', ['user_id', 'repository'])
    .execute();

  await db.schema
    .createTable('events')
    .addColumn('seq', 'bigint', (c) => c.primaryKey())
    .addColumn('at', 'varchar(32)', (c) => c.notNull())
    .addColumn('repo', 'varchar(128)')
    .addColumn('kind', 'varchar(64)', (c) => c.notNull())
    .addColumn('path', 'text')
    .addColumn('digest', 'varchar(200)')
    .addColumn('actor', 'varchar(128)')
    .addColumn('data', 'text')
    .execute();

  await db.schema
    .createTable('settings')
    .addColumn('key', 'varchar(128)', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['settings', 'events', 'role_bindings', 'tokens', 'users', 'uploads', 'tags', 'assets', 'repositories']) {
    await db.schema.dropTable(t).execute();
  }
}
