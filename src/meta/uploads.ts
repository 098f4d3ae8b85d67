/**
 * Upload sessions: who started which upload into which repository, and until when it may continue.
 * The bytes themselves live in the blob store's upload area under the same id.
 * Sessions are transient protocol state, not content: they append no events.
 */
import type { Db } from './db.ts';
import { now } from './db.ts';

export interface UploadSession {
  id: string;
  repoId: number;
  scope: string;
  state: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
  expiresAt: string;
}

export async function createUpload(db: Db, u: { id: string; repoId: number; scope: string; state?: Record<string, unknown>; ttlMs: number }): Promise<UploadSession> {
  const t = now();
  const expires = new Date(Date.now() + u.ttlMs).toISOString();
  await db
    .insertInto('uploads')
    .values({ id: u.id, repo_id: u.repoId, scope: u.scope, state: JSON.stringify(u.state ?? {}), created_at: t, updated_at: t, expires_at: expires })
    .execute();
  return { id: u.id, repoId: u.repoId, scope: u.scope, state: u.state ?? {}, createdAt: t, updatedAt: t, expiresAt: expires };
}

export async function getUpload(db: Db, id: string): Promise<UploadSession | null> {
  const r = await db.selectFrom('uploads').selectAll().where('id', '=', id).executeTakeFirst();
  if (!r) return null;
  return {
    id: r.id,
    repoId: Number(r.repo_id),
    scope: r.scope,
    state: JSON.parse(r.state) as Record<string, unknown>,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    expiresAt: r.expires_at,
  };
}

/** Records activity (and new state) on a session and pushes its expiry out by `ttlMs`. */
export async function touchUpload(db: Db, id: string, ttlMs: number, state?: Record<string, unknown>): Promise<void> {
  await db
    .updateTable('uploads')
    .set({
      updated_at: now(),
      expires_at: new Date(Date.now() + ttlMs).toISOString(),
      ...(state ? { state: JSON.stringify(state) } : {}),
    })
    .where('id', '=', id)
    .execute();
}

export async function deleteUpload(db: Db, id: string): Promise<boolean> {
  const r = await db.deleteFrom('uploads').where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** Removes and returns the ids of sessions expired at `at`. */
export async function takeExpiredUploads(db: Db, at = new Date()): Promise<string[]> {
  const rows = await db.selectFrom('uploads').select('id').where('expires_at', '<', at.toISOString()).execute();
  if (rows.length) await db.deleteFrom('uploads').where('id', 'in', rows.map((r) => r.id)).execute();
  return rows.map((r) => r.id);
}

export async function uploadIds(db: Db): Promise<Set<string>> {
  return new Set((await db.selectFrom('uploads').select('id').execute()).map((r) => r.id));
}
