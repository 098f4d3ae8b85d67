/** Queries on the repositories table. Validation of what a repository may be lives in repos/. */
import type { Db, Tx } from './db.ts';
import type { RepositoryRow, RepoKind } from './tables.ts';
import { now } from './db.ts';
import { appendEvent } from './events.ts';
import { redactSecrets } from '../util/redact.ts';

export interface RepositoryConfig {
  upstream?: string;
  members?: string[];
  writeMember?: string;
  options?: Record<string, unknown>;
}

export interface RepositoryRecord {
  id: number;
  name: string;
  format: string;
  kind: RepoKind;
  anonymousRead: boolean;
  config: RepositoryConfig;
  createdAt: string;
  updatedAt: string;
}

export function toRecord(r: RepositoryRow): RepositoryRecord {
  return {
    id: Number(r.id),
    name: r.name,
    format: r.format,
    kind: r.kind,
    anonymousRead: r.anonymous_read === 1,
    config: JSON.parse(r.config) as RepositoryConfig,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export async function getRepository(db: Db, name: string): Promise<RepositoryRecord | null> {
  const r = await db.selectFrom('repositories').selectAll().where('name', '=', name).executeTakeFirst();
  return r ? toRecord(r) : null;
}

export async function getRepositoryById(db: Db, id: number): Promise<RepositoryRecord | null> {
  const r = await db.selectFrom('repositories').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? toRecord(r) : null;
}

export async function listRepositories(db: Db, opts: { format?: string } = {}): Promise<RepositoryRecord[]> {
  let q = db.selectFrom('repositories').selectAll().orderBy('name');
  if (opts.format) q = q.where('format', '=', opts.format);
  return (await q.execute()).map(toRecord);
}

export interface RepositoryInput {
  name: string;
  format: string;
  kind: RepoKind;
  anonymousRead: boolean;
  config: RepositoryConfig;
}

export async function insertRepository(tx: Tx, input: RepositoryInput, actor: string | null): Promise<RepositoryRecord> {
  const t = now();
  const row = await tx
    .insertInto('repositories')
    .values({
      name: input.name,
      format: input.format,
      kind: input.kind,
      config: JSON.stringify(input.config),
      anonymous_read: input.anonymousRead ? 1 : 0,
      created_at: t,
      updated_at: t,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  await appendEvent(tx, {
    kind: 'repository.created',
    repo: input.name,
    actor,
    // The log is read by admins, webhooks and replicas: inline upstream credentials stay in the repository row.
    data: { format: input.format, kind: input.kind, anonymousRead: input.anonymousRead, config: redactSecrets(input.config) },
  });
  return toRecord(row);
}

export async function updateRepository(
  tx: Tx,
  name: string,
  patch: { anonymousRead?: boolean; config?: RepositoryConfig },
  actor: string | null,
): Promise<RepositoryRecord | null> {
  const row = await tx
    .updateTable('repositories')
    .set({
      ...(patch.anonymousRead === undefined ? {} : { anonymous_read: patch.anonymousRead ? 1 : 0 }),
      ...(patch.config === undefined ? {} : { config: JSON.stringify(patch.config) }),
      updated_at: now(),
    })
    .where('name', '=', name)
    .returningAll()
    .executeTakeFirst();
  if (!row) return null;
  await appendEvent(tx, { kind: 'repository.updated', repo: name, actor, data: redactSecrets(patch) as Record<string, unknown> });
  return toRecord(row);
}

export async function deleteRepository(tx: Tx, name: string, actor: string | null): Promise<boolean> {
  const r = await tx.deleteFrom('repositories').where('name', '=', name).executeTakeFirst();
  if (Number(r.numDeletedRows) === 0) return false;
  await tx.deleteFrom('role_bindings').where('repository', '=', name).execute();
  await appendEvent(tx, { kind: 'repository.deleted', repo: name, actor });
  return true;
}
