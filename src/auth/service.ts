/**
 * Authentication (credentials → principal) and authorisation (principal × action × repository → yes/no).
 * One service, used by the server's auth hook and by every format: formats never check permissions themselves.
 */
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { createHash } from 'node:crypto';
import type { Db } from '../meta/db.ts';
import type { RepositoryRecord } from '../meta/repos.ts';
import { getTokenRowByHash, getUserRow, markTokenUsed, rolesFor } from '../meta/users.ts';
import { GranaryError } from '../server/errors.ts';
import { ANONYMOUS, actionRank, type Action, type BearerVerifier, type Principal, type UserPrincipal } from './types.ts';
import { TOKEN_PREFIX, hashToken, safeEqual, verifyPassword } from './secrets.ts';
import { TtlCache } from '../util/ttl-cache.ts';
import type { Role } from '../meta/tables.ts';

export interface AuthOptions {
  failedLoginLimit: number;
  failedLoginWindowSeconds: number;
  /** Anyone may write (trusted single-user setups only). */
  anonymousWrite: boolean;
}

export interface Credentials {
  authorization?: string;
  ip: string;
}

/** How long a verified password is remembered, so clients that send Basic on every request stay fast. */
const PASSWORD_CACHE_MS = 60_000;
/** How often a token's last-used time is written at most. */
const TOKEN_TOUCH_MS = 60_000;
/**
 * How long a resolved token or a user's roles are reused. Changes made through this process clear the caches
 * at once (see `invalidate`); changes made elsewhere (another node, the CLI on the data dir) show within this.
 */
export const AUTH_CACHE_MS = 5_000;

export class AuthService {
  readonly #db: Db;
  readonly #opts: AuthOptions;
  readonly #failed: RateLimiterMemory;
  readonly #verifiers: BearerVerifier[] = [];
  readonly #passwordCache = new Map<string, number>();
  readonly #tokenTouched = new Map<string, number>();
  readonly #tokens = new TtlCache<string, { principal: UserPrincipal; expiresAt: string | null }>({ ttlMs: AUTH_CACHE_MS, max: 10_000 });
  readonly #roles = new TtlCache<string, Role[]>({ ttlMs: AUTH_CACHE_MS, max: 50_000 });

  constructor(db: Db, opts: AuthOptions) {
    this.#db = db;
    this.#opts = opts;
    this.#failed = new RateLimiterMemory({ points: opts.failedLoginLimit, duration: opts.failedLoginWindowSeconds });
  }

  /** Forgets every cached token and role: called after any change to users, tokens or bindings. */
  invalidate(): void {
    this.#tokens.clear();
    this.#roles.clear();
  }

  /** Formats add verifiers for their own bearer credentials (e.g. OCI registry JWTs). */
  addBearerVerifier(v: BearerVerifier): void {
    this.#verifiers.push(v);
  }

  /** Resolves the Authorization header to a principal; throws UNAUTHORIZED on bad credentials. */
  async authenticate(c: Credentials): Promise<Principal> {
    const h = c.authorization?.trim();
    if (!h) return ANONYMOUS;
    const space = h.indexOf(' ');
    const scheme = (space < 0 ? h : h.slice(0, space)).toLowerCase();
    const value = space < 0 ? '' : h.slice(space + 1).trim();
    if (scheme === 'bearer' || scheme === 'token') return this.#bearer(value, c.ip);
    if (scheme === 'basic') return this.#basic(value, c.ip);
    // Cargo sends the raw token with no scheme at all.
    if (h.startsWith(TOKEN_PREFIX) && space < 0) return this.#bearer(h, c.ip);
    throw new GranaryError('UNAUTHORIZED', `unsupported authorization scheme ${JSON.stringify(scheme)}`);
  }

  async #bearer(token: string, ip: string): Promise<Principal> {
    if (!token) throw new GranaryError('UNAUTHORIZED', 'empty bearer token');
    if (token.startsWith(TOKEN_PREFIX) || this.#verifiers.length === 0) return this.#apiToken(token, undefined, ip);
    for (const v of this.#verifiers) {
      const p = await v(token);
      if (p) return p;
    }
    // Not a JWT we know: it may still be an API token set by an operator (GRANARY_ADMIN_TOKEN can be any string).
    return this.#apiToken(token, undefined, ip);
  }

  async #basic(value: string, ip: string): Promise<Principal> {
    let decoded: string;
    try {
      decoded = Buffer.from(value, 'base64').toString('utf8');
    } catch {
      throw new GranaryError('UNAUTHORIZED', 'malformed basic credentials');
    }
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new GranaryError('UNAUTHORIZED', 'malformed basic credentials');
    const user = decoded.slice(0, colon);
    const secret = decoded.slice(colon + 1);
    if (!user || !secret) throw new GranaryError('UNAUTHORIZED', 'empty user name or password');
    const key = `${user}|${ip}`;
    const row = await getUserRow(this.#db, { name: user });
    // The secret may be an API token of that user (how npm, Maven, pip and docker login pass tokens).
    if (row && !row.password_hash) return this.#apiToken(secret, row.id, ip, key);
    const tokenRow = await getTokenRowByHash(this.#db, hashToken(secret));
    if (tokenRow) return this.#apiToken(secret, row ? Number(row.id) : -1, ip, key);
    // Passwords can be guessed: past the limit even the right one is refused until the window passes.
    await this.#checkNotLimited(key);
    if (!row || row.disabled || !row.password_hash || !(await this.#checkPassword(secret, row.password_hash))) {
      await this.#fail(key);
      throw new GranaryError('UNAUTHORIZED', 'invalid user name or password');
    }
    return { kind: 'user', id: Number(row.id), name: row.name, admin: row.is_admin === 1, via: 'password', readOnly: false };
  }

  async #checkPassword(password: string, stored: string): Promise<boolean> {
    const cacheKey = createHash('sha256').update(stored).update('\0').update(password).digest('hex');
    const until = this.#passwordCache.get(cacheKey);
    if (until && until > Date.now()) return true;
    const ok = await verifyPassword(password, stored);
    if (ok) {
      if (this.#passwordCache.size > 10_000) this.#passwordCache.clear();
      this.#passwordCache.set(cacheKey, Date.now() + PASSWORD_CACHE_MS);
    }
    return ok;
  }

  /**
   * API tokens carry 256 random bits, so guessing is hopeless and a valid token is never held back by other
   * callers' failures; invalid attempts are still counted per address, and past the limit answered 429.
   */
  async #apiToken(token: string, expectUserId: number | undefined, ip: string, limitKey = `token|${ip}`): Promise<Principal> {
    const hash = hashToken(token);
    const cached = this.#tokens.get(hash);
    if (cached && (!cached.expiresAt || cached.expiresAt > new Date().toISOString()) && (expectUserId === undefined || expectUserId === cached.principal.id)) {
      return cached.principal;
    }
    const row = await getTokenRowByHash(this.#db, hash);
    const fail = async (why: string): Promise<never> => {
      await this.#checkNotLimited(limitKey);
      await this.#fail(limitKey);
      throw new GranaryError('UNAUTHORIZED', why);
    };
    if (!row || !safeEqual(row.secret_hash, hash)) return fail('invalid token');
    if (row.revoked_at) return fail('token revoked');
    if (row.expires_at && row.expires_at <= new Date().toISOString()) return fail('token expired');
    if (expectUserId !== undefined && Number(row.user_id) !== expectUserId) return fail('token does not belong to that user');
    const user = await getUserRow(this.#db, { id: Number(row.user_id) });
    if (!user || user.disabled) return fail('user disabled');
    const last = this.#tokenTouched.get(row.id) ?? 0;
    if (Date.now() - last > TOKEN_TOUCH_MS) {
      this.#tokenTouched.set(row.id, Date.now());
      await markTokenUsed(this.#db, row.id);
    }
    const principal: UserPrincipal = {
      kind: 'user',
      id: Number(user.id),
      name: user.name,
      admin: user.is_admin === 1,
      via: 'token',
      tokenId: row.id,
      readOnly: row.read_only === 1,
    };
    this.#tokens.set(hash, { principal, expiresAt: row.expires_at });
    return principal;
  }

  /** Verifies a user name + password or token for token endpoints (OCI `/v2/token`); throws on failure. */
  async login(user: string, secret: string, ip: string): Promise<UserPrincipal> {
    const p = await this.#basic(Buffer.from(`${user}:${secret}`).toString('base64'), ip);
    return p as UserPrincipal;
  }

  async #checkNotLimited(key: string): Promise<void> {
    const res = await this.#failed.get(key);
    if (res && res.consumedPoints >= this.#opts.failedLoginLimit) {
      throw new GranaryError('TOO_MANY_REQUESTS', 'too many failed logins; try again later', {
        headers: { 'retry-after': String(Math.ceil(res.msBeforeNext / 1000)) },
      });
    }
  }

  async #fail(key: string): Promise<void> {
    await this.#failed.penalty(key, 1);
  }

  /**
   * May this principal do `action` on the repository (or, with none, on the server as a whole)? `image` narrows
   * a scoped credential (`restrict`) to one image of the repository; roles are per repository.
   */
  async can(p: Principal, action: Action, repo: RepositoryRecord | null, image?: string): Promise<boolean> {
    if (p.kind === 'user') {
      if (p.readOnly && action !== 'read') return false;
      if (repo && p.restrict && !p.restrict(repo.name, action, image)) return false;
      if (p.admin) return true;
    }
    if (!repo) return p.kind === 'user' && action === 'read';
    if (action === 'read' && repo.anonymousRead) return true;
    if (this.#opts.anonymousWrite && action !== 'admin') return true;
    if (p.kind === 'anonymous') return false;
    const key = `${p.id}\0${repo.name}`;
    let roles = this.#roles.get(key);
    if (!roles) {
      roles = await rolesFor(this.#db, p.id, repo.name);
      this.#roles.set(key, roles);
    }
    const need = actionRank(action);
    return roles.some((r) => actionRank(r) >= need);
  }

  /** Throws UNAUTHORIZED (anonymous) or DENIED (authenticated) unless allowed. */
  async require(p: Principal, action: Action, repo: RepositoryRecord | null, image?: string): Promise<void> {
    if (await this.can(p, action, repo, image)) return;
    if (p.kind === 'anonymous') throw new GranaryError('UNAUTHORIZED');
    // A scoped credential (a registry JWT) that lacks the scope: 401, so the client fetches a token for it —
    // as Distribution answers, and what docker and containerd expect.
    if (repo && p.restrict && !p.restrict(repo.name, action, image)) {
      const what = image === undefined ? repo.name : `${image} in ${repo.name}`;
      throw new GranaryError('UNAUTHORIZED', `the token does not grant ${action} on ${what}`, { details: { insufficientScope: true } });
    }
    throw new GranaryError('DENIED', repo ? `${action} access to repository ${repo.name} denied` : `${action} access denied`);
  }
}
