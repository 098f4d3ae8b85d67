/**
 * Account management — users, API tokens, role bindings and the first-start admin — shared by the
 * management API and the CLI's local mode so both enforce the same rules.
 */
import type { MetaDb } from '../meta/db.ts';
import { isUniqueViolation, serialize, withTx } from '../meta/db.ts';
import {
  countUsers,
  deleteBinding,
  deleteUser,
  getTokenRow,
  getTokenRowByHash,
  getUserRow,
  insertToken,
  insertUser,
  listBindings,
  listTokens,
  listUsers,
  revokeToken,
  setBinding,
  toToken,
  toUser,
  updateUser,
  type RoleBinding,
  type TokenInfo,
  type User,
} from '../meta/users.ts';
import { getRepository } from '../meta/repos.ts';
import type { Role } from '../meta/tables.ts';
import { GranaryError } from '../server/errors.ts';
import { hashPassword, hashToken, newToken } from './secrets.ts';
import { ACTIONS } from './types.ts';

export const USER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9._@-]{0,127}$/;
export const MIN_PASSWORD = 8;
const ADMIN_TOKEN_NAME = 'GRANARY_ADMIN_TOKEN';
/** Advisory-lock key serialising the admin-token bootstrap across nodes (arbitrary; "boot"). */
const BOOTSTRAP_LOCK = 0x626f6f74;

export interface CreatedToken {
  token: string;
  info: TokenInfo;
}

export class AccountService {
  readonly #meta: MetaDb;
  readonly #defaultTtlDays: number | undefined;
  readonly #onChange: () => void;

  /** `onChange` runs after every change to users, tokens or bindings (the auth caches listen). */
  constructor(meta: MetaDb, opts: { tokenTtlDays?: number; onChange?: () => void } = {}) {
    this.#meta = meta;
    this.#defaultTtlDays = opts.tokenTtlDays;
    this.#onChange = opts.onChange ?? (() => {});
  }

  async #changed<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } finally {
      this.#onChange();
    }
  }

  get #db() {
    return this.#meta.db;
  }

  async #user(name: string) {
    const row = await getUserRow(this.#db, { name });
    if (!row) throw new GranaryError('NOT_FOUND', `user ${name} not found`);
    return row;
  }

  listUsers(): Promise<User[]> {
    return listUsers(this.#db);
  }

  async getUser(name: string): Promise<User> {
    return toUser(await this.#user(name));
  }

  async addUser(i: { name: string; password?: string; admin?: boolean }, actor: string | null): Promise<User> {
    if (!USER_NAME.test(i.name)) throw new GranaryError('VALIDATION', `name: ${JSON.stringify(i.name)} is not a valid user name`, { details: { field: 'name' } });
    if (i.password !== undefined && i.password.length < MIN_PASSWORD) {
      throw new GranaryError('VALIDATION', `password: must be at least ${MIN_PASSWORD} characters`, { details: { field: 'password' } });
    }
    if (await getUserRow(this.#db, { name: i.name })) throw new GranaryError('CONFLICT', `user ${i.name} already exists`);
    const passwordHash = i.password === undefined ? null : await hashPassword(i.password);
    return this.#changed(withTx(this.#db, (tx) => insertUser(tx, { name: i.name, passwordHash, admin: i.admin ?? false }, actor)));
  }

  async updateUser(name: string, patch: { password?: string | null; admin?: boolean; disabled?: boolean }, actor: string | null): Promise<User> {
    await this.#user(name);
    if (typeof patch.password === 'string' && patch.password.length < MIN_PASSWORD) {
      throw new GranaryError('VALIDATION', `password: must be at least ${MIN_PASSWORD} characters`, { details: { field: 'password' } });
    }
    const passwordHash = patch.password === undefined ? undefined : patch.password === null ? null : await hashPassword(patch.password);
    const u = await this.#changed(withTx(this.#db, (tx) => updateUser(tx, name, { passwordHash, admin: patch.admin, disabled: patch.disabled }, actor)));
    return u!;
  }

  async removeUser(name: string, actor: string | null): Promise<void> {
    if (!(await this.#changed(withTx(this.#db, (tx) => deleteUser(tx, name, actor))))) throw new GranaryError('NOT_FOUND', `user ${name} not found`);
  }

  async createToken(
    i: { user: string; name: string; readOnly?: boolean; expiresInDays?: number | null },
    actor: string | null,
  ): Promise<CreatedToken> {
    const row = await this.#user(i.user);
    if (!i.name || i.name.length > 128) throw new GranaryError('VALIDATION', 'name: 1-128 characters', { details: { field: 'name' } });
    const days = i.expiresInDays === undefined ? this.#defaultTtlDays : (i.expiresInDays ?? undefined);
    const expiresAt = days ? new Date(Date.now() + days * 86_400_000).toISOString() : null;
    const t = newToken();
    const info = await withTx(this.#db, (tx) =>
      insertToken(tx, { id: t.id, userId: Number(row.id), userName: row.name, name: i.name, secretHash: t.hash, readOnly: i.readOnly ?? false, expiresAt }, actor),
    );
    return { token: t.token, info };
  }

  async listTokens(user?: string): Promise<(TokenInfo & { user: string })[]> {
    const users = new Map((await listUsers(this.#db)).map((u) => [u.id, u.name]));
    const uid = user === undefined ? undefined : Number((await this.#user(user)).id);
    return (await listTokens(this.#db, uid)).map((t) => ({ ...t, user: users.get(t.userId) ?? '?' }));
  }

  async getToken(id: string): Promise<TokenInfo | null> {
    const r = await getTokenRow(this.#db, id);
    return r ? toToken(r) : null;
  }

  async revokeToken(id: string, actor: string | null): Promise<void> {
    if (!(await getTokenRow(this.#db, id))) throw new GranaryError('NOT_FOUND', `token ${id} not found`);
    await this.#changed(withTx(this.#db, (tx) => revokeToken(tx, id, actor)));
  }

  listBindings(opts: { user?: string; repository?: string } = {}): Promise<RoleBinding[]> {
    return (async () => {
      const userId = opts.user === undefined ? undefined : Number((await this.#user(opts.user)).id);
      return listBindings(this.#db, { userId, repository: opts.repository });
    })();
  }

  async grant(i: { user: string; repository: string; role: Role }, actor: string | null): Promise<void> {
    if (!(ACTIONS as readonly string[]).includes(i.role)) throw new GranaryError('VALIDATION', `role: must be one of ${ACTIONS.join(', ')}`);
    const row = await this.#user(i.user);
    if (i.repository !== '*' && !(await getRepository(this.#db, i.repository))) {
      throw new GranaryError('VALIDATION', `repository: ${i.repository} does not exist`, { details: { field: 'repository' } });
    }
    await this.#changed(withTx(this.#db, (tx) => setBinding(tx, { userId: Number(row.id), user: row.name, repository: i.repository, role: i.role }, actor)));
  }

  async revoke(i: { user: string; repository: string }, actor: string | null): Promise<void> {
    const row = await this.#user(i.user);
    const ok = await this.#changed(withTx(this.#db, (tx) => deleteBinding(tx, { userId: Number(row.id), user: row.name, repository: i.repository }, actor)));
    if (!ok) throw new GranaryError('NOT_FOUND', `${i.user} has no binding on ${i.repository}`);
  }

  /**
   * First start: with no users, creates `admin` and returns a new token to print once — or, when the operator
   * gave GRANARY_ADMIN_TOKEN, makes sure that exact token works (rotating the previous one) and returns null.
   */
  async bootstrapAdmin(adminToken: string | undefined): Promise<{ token: string } | null> {
    // Nodes started together on an empty database race here; the loser trips over the winner's unique user name
    // or token hash, and its second pass finds the winner's rows, where every step is a no-op.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#bootstrapAdminOnce(adminToken);
      } catch (e) {
        const lostRace = isUniqueViolation(e) || (e instanceof GranaryError && e.code === 'CONFLICT');
        if (!lostRace || attempt >= 3) throw e;
      }
    }
  }

  async #bootstrapAdminOnce(adminToken: string | undefined): Promise<{ token: string } | null> {
    const empty = (await countUsers(this.#db)) === 0;
    if (!adminToken) {
      if (!empty) return null;
      await this.addUser({ name: 'admin', admin: true }, 'bootstrap');
      const t = await this.createToken({ user: 'admin', name: 'first-start', expiresInDays: null }, 'bootstrap');
      return { token: t.token };
    }
    let admin = await getUserRow(this.#db, { name: 'admin' });
    if (!admin) {
      await this.addUser({ name: 'admin', admin: true }, 'bootstrap');
      admin = (await getUserRow(this.#db, { name: 'admin' }))!;
    } else if (admin.is_admin !== 1 || admin.disabled === 1) {
      await this.updateUser('admin', { admin: true, disabled: false }, 'bootstrap');
    }
    const hash = hashToken(adminToken);
    const adminId = Number(admin.id);
    // Check, rotate and insert as one serialised step: two nodes starting with the same token must not each
    // revoke the token the other just stored.
    await this.#changed(
      withTx(this.#db, async (tx) => {
        await serialize(tx, BOOTSTRAP_LOCK);
        const existing = await getTokenRowByHash(tx, hash);
        if (existing && !existing.revoked_at && Number(existing.user_id) === adminId) return;
        if (existing) throw new Error('GRANARY_ADMIN_TOKEN is already in use as another (or a revoked) token; choose a new value');
        for (const t of await listTokens(tx, adminId)) {
          if (t.name === ADMIN_TOKEN_NAME && !t.revokedAt) await revokeToken(tx, t.id, 'bootstrap');
        }
        await insertToken(tx, { id: newToken().id, userId: adminId, userName: 'admin', name: ADMIN_TOKEN_NAME, secretHash: hash, readOnly: false, expiresAt: null }, 'bootstrap');
      }),
    );
    return null;
  }
}
