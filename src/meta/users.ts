/** Users, API tokens and role bindings. Only hashes of secrets are stored; hashing itself is auth/'s job. */
import type { Db, Tx } from './db.ts';
import type { Role, TokenRow, UserRow } from './tables.ts';
import { now } from './db.ts';
import { appendEvent } from './events.ts';

export interface User {
  id: number;
  name: string;
  admin: boolean;
  disabled: boolean;
  hasPassword: boolean;
  createdAt: string;
}

export const toUser = (r: UserRow): User => ({
  id: Number(r.id),
  name: r.name,
  admin: r.is_admin === 1,
  disabled: r.disabled === 1,
  hasPassword: r.password_hash !== null,
  createdAt: r.created_at,
});

export async function getUserRow(db: Db, by: { name: string } | { id: number }): Promise<UserRow | null> {
  let q = db.selectFrom('users').selectAll();
  q = 'name' in by ? q.where('name', '=', by.name) : q.where('id', '=', by.id);
  return (await q.executeTakeFirst()) ?? null;
}

export async function listUsers(db: Db): Promise<User[]> {
  return (await db.selectFrom('users').selectAll().orderBy('name').execute()).map(toUser);
}

export async function countUsers(db: Db): Promise<number> {
  const r = await db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
  return Number(r?.n ?? 0);
}

export async function insertUser(tx: Tx, u: { name: string; passwordHash: string | null; admin: boolean }, actor: string | null): Promise<User> {
  const row = await tx
    .insertInto('users')
    .values({ name: u.name, password_hash: u.passwordHash, is_admin: u.admin ? 1 : 0, disabled: 0, created_at: now() })
    .returningAll()
    .executeTakeFirstOrThrow();
  await appendEvent(tx, { kind: 'user.created', actor, data: { user: u.name, admin: u.admin } });
  return toUser(row);
}

export async function updateUser(
  tx: Tx,
  name: string,
  patch: { passwordHash?: string | null; admin?: boolean; disabled?: boolean },
  actor: string | null,
): Promise<User | null> {
  const row = await tx
    .updateTable('users')
    .set({
      ...(patch.passwordHash === undefined ? {} : { password_hash: patch.passwordHash }),
      ...(patch.admin === undefined ? {} : { is_admin: patch.admin ? 1 : 0 }),
      ...(patch.disabled === undefined ? {} : { disabled: patch.disabled ? 1 : 0 }),
    })
    .where('name', '=', name)
    .returningAll()
    .executeTakeFirst();
  if (!row) return null;
  await appendEvent(tx, {
    kind: 'user.updated',
    actor,
    data: {
      user: name,
      ...(patch.passwordHash === undefined ? {} : { passwordChanged: true }),
      ...(patch.admin === undefined ? {} : { admin: patch.admin }),
      ...(patch.disabled === undefined ? {} : { disabled: patch.disabled }),
    },
  });
  return toUser(row);
}

export async function deleteUser(tx: Tx, name: string, actor: string | null): Promise<boolean> {
  const r = await tx.deleteFrom('users').where('name', '=', name).executeTakeFirst();
  if (Number(r.numDeletedRows) === 0) return false;
  await appendEvent(tx, { kind: 'user.deleted', actor, data: { user: name } });
  return true;
}

export interface TokenInfo {
  id: string;
  userId: number;
  name: string;
  readOnly: boolean;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export const toToken = (r: TokenRow): TokenInfo => ({
  id: r.id,
  userId: Number(r.user_id),
  name: r.name,
  readOnly: r.read_only === 1,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  revokedAt: r.revoked_at,
  lastUsedAt: r.last_used_at,
});

export async function getTokenRow(db: Db, id: string): Promise<TokenRow | null> {
  return (await db.selectFrom('tokens').selectAll().where('id', '=', id).executeTakeFirst()) ?? null;
}

export async function getTokenRowByHash(db: Db, secretHash: string): Promise<TokenRow | null> {
  return (await db.selectFrom('tokens').selectAll().where('secret_hash', '=', secretHash).executeTakeFirst()) ?? null;
}

export async function insertToken(
  tx: Tx,
  t: { id: string; userId: number; userName: string; name: string; secretHash: string; readOnly: boolean; expiresAt: string | null },
  actor: string | null,
): Promise<TokenInfo> {
  const row = await tx
    .insertInto('tokens')
    .values({
      id: t.id,
      user_id: t.userId,
      name: t.name,
      secret_hash: t.secretHash,
      read_only: t.readOnly ? 1 : 0,
      created_at: now(),
      expires_at: t.expiresAt,
      revoked_at: null,
      last_used_at: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  await appendEvent(tx, { kind: 'token.created', actor, data: { user: t.userName, token: t.id, name: t.name, readOnly: t.readOnly } });
  return toToken(row);
}

export async function listTokens(db: Db, userId?: number): Promise<TokenInfo[]> {
  let q = db.selectFrom('tokens').selectAll().orderBy('created_at');
  if (userId !== undefined) q = q.where('user_id', '=', userId);
  return (await q.execute()).map(toToken);
}

export async function revokeToken(tx: Tx, id: string, actor: string | null): Promise<boolean> {
  const r = await tx.updateTable('tokens').set({ revoked_at: now() }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
  if (Number(r.numUpdatedRows) === 0) return false;
  await appendEvent(tx, { kind: 'token.revoked', actor, data: { token: id } });
  return true;
}

export async function markTokenUsed(db: Db, id: string): Promise<void> {
  await db.updateTable('tokens').set({ last_used_at: now() }).where('id', '=', id).execute();
}

export interface RoleBinding {
  id: number;
  user: string;
  repository: string;
  role: Role;
  createdAt: string;
}

export async function listBindings(db: Db, opts: { userId?: number; repository?: string } = {}): Promise<RoleBinding[]> {
  let q = db
    .selectFrom('role_bindings')
    .innerJoin('users', 'users.id', 'role_bindings.user_id')
    .select(['role_bindings.id', 'users.name as user', 'role_bindings.repository', 'role_bindings.role', 'role_bindings.created_at'])
    .orderBy('role_bindings.id');
  if (opts.userId !== undefined) q = q.where('role_bindings.user_id', '=', opts.userId);
  if (opts.repository !== undefined) q = q.where('role_bindings.repository', '=', opts.repository);
  return (await q.execute()).map((r) => ({ id: Number(r.id), user: r.user, repository: r.repository, role: r.role, createdAt: r.created_at }));
}

/** The roles a user holds on a repository: bindings to it by name, and to '*'. */
export async function rolesFor(db: Db, userId: number, repository: string): Promise<Role[]> {
  const rows = await db
    .selectFrom('role_bindings')
    .select('role')
    .where('user_id', '=', userId)
    .where('repository', 'in', [repository, '*'])
    .execute();
  return rows.map((r) => r.role);
}

/** Grants (or changes) a user's role on a repository. */
export async function setBinding(tx: Tx, b: { userId: number; user: string; repository: string; role: Role }, actor: string | null): Promise<void> {
  const existing = await tx
    .selectFrom('role_bindings')
    .select('id')
    .where('user_id', '=', b.userId)
    .where('repository', '=', b.repository)
    .executeTakeFirst();
  if (existing) await tx.updateTable('role_bindings').set({ role: b.role }).where('id', '=', existing.id).execute();
  else await tx.insertInto('role_bindings').values({ user_id: b.userId, repository: b.repository, role: b.role, created_at: now() }).execute();
  await appendEvent(tx, { kind: 'binding.set', repo: b.repository === '*' ? null : b.repository, actor, data: { user: b.user, repository: b.repository, role: b.role } });
}

export async function deleteBinding(tx: Tx, b: { userId: number; user: string; repository: string }, actor: string | null): Promise<boolean> {
  const r = await tx.deleteFrom('role_bindings').where('user_id', '=', b.userId).where('repository', '=', b.repository).executeTakeFirst();
  if (Number(r.numDeletedRows) === 0) return false;
  await appendEvent(tx, { kind: 'binding.deleted', repo: b.repository === '*' ? null : b.repository, actor, data: { user: b.user, repository: b.repository } });
  return true;
}
