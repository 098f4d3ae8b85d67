/** Tags (or their equivalents: npm dist-tags, Go/Maven "latest"): a name within a scope → a target. */
import type { Db, Tx } from './db.ts';
import type { TagRow } from './tables.ts';
import { now } from './db.ts';
import { appendEvent } from './events.ts';

export interface Tag {
  scope: string;
  name: string;
  target: string;
  updatedAt: string;
}

const toTag = (r: TagRow): Tag => ({ scope: r.scope, name: r.name, target: r.target, updatedAt: r.updated_at });

export async function getTag(db: Db, repoId: number, scope: string, name: string): Promise<Tag | null> {
  const r = await db
    .selectFrom('tags')
    .selectAll()
    .where('repo_id', '=', repoId)
    .where('scope', '=', scope)
    .where('name', '=', name)
    .executeTakeFirst();
  return r ? toTag(r) : null;
}

/** Lists tags of a scope in name order, after `last` (exclusive), at most `limit`. */
export async function listTags(db: Db, repoId: number, scope: string, opts: { last?: string; limit?: number } = {}): Promise<Tag[]> {
  let q = db.selectFrom('tags').selectAll().where('repo_id', '=', repoId).where('scope', '=', scope).orderBy('name');
  if (opts.last !== undefined) q = q.where('name', '>', opts.last);
  if (opts.limit !== undefined) q = q.limit(opts.limit);
  return (await q.execute()).map(toTag);
}

export async function tagsPointingAt(db: Db, repoId: number, scope: string, target: string): Promise<Tag[]> {
  const rows = await db
    .selectFrom('tags')
    .selectAll()
    .where('repo_id', '=', repoId)
    .where('scope', '=', scope)
    .where('target', '=', target)
    .execute();
  return rows.map(toTag);
}

/** Distinct scopes (e.g. image names) of a repository, in order, after `last`. */
export async function listScopes(db: Db, repoId: number, opts: { last?: string; limit?: number } = {}): Promise<string[]> {
  let q = db.selectFrom('tags').select('scope').distinct().where('repo_id', '=', repoId).orderBy('scope');
  if (opts.last !== undefined) q = q.where('scope', '>', opts.last);
  if (opts.limit !== undefined) q = q.limit(opts.limit);
  return (await q.execute()).map((r) => r.scope);
}

/** Points a tag at a target (creating or moving it); returns the previous target. */
export async function setTag(
  tx: Tx,
  repo: { id: number; name: string },
  scope: string,
  name: string,
  target: string,
  actor: string | null,
): Promise<string | null> {
  const prev = await getTag(tx, repo.id, scope, name);
  if (prev?.target === target) return prev.target;
  if (prev) {
    await tx
      .updateTable('tags')
      .set({ target, updated_at: now() })
      .where('repo_id', '=', repo.id)
      .where('scope', '=', scope)
      .where('name', '=', name)
      .execute();
  } else {
    await tx.insertInto('tags').values({ repo_id: repo.id, scope, name, target, updated_at: now() }).execute();
  }
  await appendEvent(tx, {
    kind: 'tag.set',
    repo: repo.name,
    path: `${scope}:${name}`,
    digest: target,
    actor,
    data: { scope, tag: name, target, previous: prev?.target ?? null },
  });
  return prev?.target ?? null;
}

export async function deleteTag(tx: Tx, repo: { id: number; name: string }, scope: string, name: string, actor: string | null): Promise<boolean> {
  const prev = await getTag(tx, repo.id, scope, name);
  if (!prev) return false;
  await tx.deleteFrom('tags').where('repo_id', '=', repo.id).where('scope', '=', scope).where('name', '=', name).execute();
  await appendEvent(tx, {
    kind: 'tag.deleted',
    repo: repo.name,
    path: `${scope}:${name}`,
    digest: prev.target,
    actor,
    data: { scope, tag: name },
  });
  return true;
}
