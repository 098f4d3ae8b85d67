/**
 * Trusted public keys per repository: the keys whose signatures a generic repository's signature policy accepts.
 * Writes append their event in the same transaction.
 */
import type { Db, Tx } from './db.ts';
import { now } from './db.ts';
import { appendEvent } from './events.ts';

export interface TrustedKeyRecord {
  id: string;
  algorithm: string;
  fingerprint: string;
  /** Canonical SPKI PEM. */
  publicKey: string;
  createdAt: string;
}

export async function listTrustedKeys(db: Db, repoId: number): Promise<TrustedKeyRecord[]> {
  const rows = await db.selectFrom('trusted_keys').selectAll().where('repo_id', '=', repoId).orderBy('key_id').execute();
  return rows.map((r) => ({ id: r.key_id, algorithm: r.algorithm, fingerprint: r.fingerprint, publicKey: r.public_key, createdAt: r.created_at }));
}

/** Adds or replaces the key `k.id` of a repository; returns whether it replaced one. */
export async function putTrustedKey(
  tx: Tx,
  repo: { id: number; name: string },
  k: Omit<TrustedKeyRecord, 'createdAt'>,
  actor: string | null,
): Promise<{ key: TrustedKeyRecord; replaced: boolean }> {
  const t = now();
  const prev = await tx.selectFrom('trusted_keys').select('id').where('repo_id', '=', repo.id).where('key_id', '=', k.id).executeTakeFirst();
  const values = { algorithm: k.algorithm, fingerprint: k.fingerprint, public_key: k.publicKey, created_at: t };
  if (prev) await tx.updateTable('trusted_keys').set(values).where('id', '=', prev.id).execute();
  else await tx.insertInto('trusted_keys').values({ ...values, repo_id: repo.id, key_id: k.id }).execute();
  await appendEvent(tx, { kind: 'trust.key.put', repo: repo.name, path: null, digest: null, actor, data: { key: k.id, algorithm: k.algorithm, fingerprint: k.fingerprint, publicKey: k.publicKey } });
  return { key: { ...k, createdAt: t }, replaced: prev !== undefined };
}

export async function deleteTrustedKey(tx: Tx, repo: { id: number; name: string }, keyId: string, actor: string | null): Promise<boolean> {
  const r = await tx.deleteFrom('trusted_keys').where('repo_id', '=', repo.id).where('key_id', '=', keyId).executeTakeFirst();
  if (Number(r.numDeletedRows) === 0) return false;
  await appendEvent(tx, { kind: 'trust.key.deleted', repo: repo.name, path: null, digest: null, actor, data: { key: keyId } });
  return true;
}
