/**
 * Docker registry token auth for OCI clients: the token endpoint, the JWTs it issues, their verifier, and the
 * `WWW-Authenticate` challenge that sends clients there.
 *
 * Specs (distribution/distribution docs/spec/auth): token.md (GET `/token?service=&scope=&account=&offline_token=`
 * with Basic or no credentials → `{token, access_token, expires_in, issued_at[, refresh_token]}`), oauth.md
 * (POST form: `grant_type=password|refresh_token`, `access_type=offline`), scope.md (`type[(class)]:name:actions`),
 * jwt.md (claims `iss sub aud exp nbf iat jti access`).
 *
 * Tokens grant only what `s.auth.can` allows the principal on the Granary repository a scope name maps to (its
 * first segment, or the configured default repository); the verifier turns a token back into a principal whose
 * `restrict` is those grants — the auth hook still checks the principal's roles on top. The ES256 key lives in
 * `<dataDir>/keys/oci-token.jwk` (0600), created on first use.
 */
import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SignJWT, calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, jwtVerify } from 'jose';
import type { CryptoKey, JWK, JWTPayload } from 'jose';
import type { Action, Principal, UserPrincipal } from '../../auth/types.ts';
import { ANONYMOUS } from '../../auth/types.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import type { Services } from '../../server/services.ts';
import { GranaryError } from '../../server/errors.ts';
import { isValidName } from './names.ts';
import { OCI_FORMAT, resolveName } from './target.ts';

/** `iss` of every token, and the `service` of the challenge (= `aud`). */
export const TOKEN_ISSUER = 'granary';
export const TOKEN_SERVICE = 'granary';
const ALG = 'ES256';
/** Refresh tokens (offline tokens, docker's "identity token") live this long; their user and API token are re-checked on use. */
const REFRESH_TTL_SECONDS = 30 * 86_400;
const CLOCK_TOLERANCE_SECONDS = 30;
const FORM_BODY_LIMIT = 16 * 1024;
const MAX_SCOPES = 64;
const ACTION_OF = { pull: 'read', push: 'write', delete: 'delete' } as const satisfies Record<string, Action>;

export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

interface TokenClaims extends JWTPayload {
  access?: AccessEntry[];
  /** Granary user id, so a re-created user of the same name does not inherit tokens. */
  uid?: number;
  /** API token the caller logged in with, if any. */
  tid?: string;
  /** Issued to a read-only API token. */
  ro?: boolean;
  /** 'refresh' on refresh tokens; absent on access tokens. */
  token_use?: 'refresh';
}

// ---------------------------------------------------------------------------------------------------------------
// Signing key

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

/**
 * Loads `<dataDir>/keys/oci-token.jwk`, creating it on first use. The new key is written to a temp file
 * (0600, fsync'd) and published with link(2), not rename(2): when two processes start at once the first key
 * wins and the other reads it, instead of each keeping a key the other will never accept.
 */
async function loadOrCreateKey(dataDir: string): Promise<SigningKey> {
  const dir = join(dataDir, 'keys');
  const file = join(dir, 'oci-token.jwk');
  try {
    return await importKey(JSON.parse(await readFile(file, 'utf8')) as JWK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read the OCI token key ${file}: ${(e as Error).message}`, { cause: e });
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { privateKey } = await generateKeyPair(ALG, { extractable: true });
  const jwk = await exportJWK(privateKey);
  jwk.kid = await calculateJwkThumbprint({ kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, y: jwk.y! });
  jwk.alg = ALG;
  jwk.use = 'sig';
  const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await fh.writeFile(JSON.stringify(jwk) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') await rename(tmp, file); // no hard links here
    else if (code !== 'EEXIST') throw e;
  } finally {
    await unlink(tmp).catch(() => {});
  }
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
  return importKey(JSON.parse(await readFile(file, 'utf8')) as JWK);
}

async function importKey(jwk: JWK): Promise<SigningKey> {
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.d) throw new Error('not an ES256 private key');
  const kid = jwk.kid ?? (await calculateJwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x!, y: jwk.y! }));
  const privateKey = (await importJWK(jwk, ALG)) as CryptoKey;
  const { d: _d, ...pub } = jwk;
  const publicKey = (await importJWK(pub, ALG)) as CryptoKey;
  return { kid, privateKey, publicKey };
}

// ---------------------------------------------------------------------------------------------------------------
// Scopes and grants

export interface Scope {
  type: string;
  name: string;
  actions: string[];
}

/**
 * Parses scope strings (each may hold several, space-separated: docker's POST form does that). The name is
 * everything between the first and the last ':' (a name may carry a `host:port` in some clients); a type may
 * carry a class, `repository(plugin)`, which is dropped. Malformed entries are ignored, as Distribution does.
 */
export function parseScopes(values: readonly string[]): Scope[] {
  const out: Scope[] = [];
  for (const v of values) {
    for (const one of v.split(' ')) {
      const first = one.indexOf(':');
      const last = one.lastIndexOf(':');
      if (first <= 0 || last === first) continue;
      const type = one.slice(0, first).replace(/\(.*\)$/, '');
      const name = one.slice(first + 1, last);
      const actions = one.slice(last + 1).split(',').filter((a) => a !== '');
      if (!name) continue;
      const same = out.find((s) => s.type === type && s.name === name);
      if (same) same.actions = [...new Set([...same.actions, ...actions])];
      else out.push({ type, name, actions: [...new Set(actions)] });
      if (out.length > MAX_SCOPES) throw new GranaryError('BAD_REQUEST', `more than ${MAX_SCOPES} scopes requested`);
    }
  }
  return out;
}

/** The Granary repository an OCI name lives in (as the routes resolve it: target.ts), if it exists and is OCI. */
async function repositoryOf(s: Services, name: string): Promise<RepositoryRecord | null> {
  if (!isValidName(name)) return null;
  const repo = await s.repos.get((await resolveName(s, name)).repo);
  return repo && repo.format === OCI_FORMAT ? repo : null;
}

/** The access entries to put in a token: each requested scope, with only the actions the principal may do. */
async function grant(s: Services, p: Principal, scopes: readonly Scope[]): Promise<AccessEntry[]> {
  const out: AccessEntry[] = [];
  for (const sc of scopes) {
    const actions: string[] = [];
    if (sc.type === 'repository') {
      const repo = await repositoryOf(s, sc.name);
      if (repo) {
        for (const a of sc.actions) {
          const need: Action = a === '*' ? 'delete' : (ACTION_OF as Record<string, Action>)[a];
          if (need && (await s.auth.can(p, need, repo))) actions.push(a);
        }
      }
    } else if (sc.type === 'registry' && sc.name === 'catalog') {
      if (sc.actions.includes('*') && (await s.auth.can(p, 'read', null))) actions.push('*');
    }
    out.push({ type: sc.type, name: sc.name, actions });
  }
  return out;
}

/** What the access claims allow, per Granary repository (the verifier's side of `grant`). */
async function allowedFrom(s: Services, access: readonly AccessEntry[]): Promise<Map<string, Set<Action>>> {
  const allowed = new Map<string, Set<Action>>();
  for (const e of access) {
    if (e?.type !== 'repository' || typeof e.name !== 'string' || !Array.isArray(e.actions)) continue;
    const repo = await repositoryOf(s, e.name);
    if (!repo) continue;
    const set = allowed.get(repo.name) ?? new Set<Action>();
    for (const a of e.actions) {
      if (a === '*') for (const x of Object.values(ACTION_OF)) set.add(x);
      else if (Object.hasOwn(ACTION_OF, a)) set.add(ACTION_OF[a as keyof typeof ACTION_OF]);
    }
    allowed.set(repo.name, set);
  }
  return allowed;
}

// ---------------------------------------------------------------------------------------------------------------
// Issuing and verifying

class TokenService {
  readonly #s: Services;
  #key: Promise<SigningKey> | null = null;

  constructor(s: Services) {
    this.#s = s;
  }

  key(): Promise<SigningKey> {
    this.#key ??= loadOrCreateKey(this.#s.config.dataDir).catch((e) => {
      this.#key = null;
      throw e;
    });
    return this.#key;
  }

  async sign(claims: TokenClaims, sub: string, ttlSeconds: number): Promise<{ token: string; issuedAt: Date }> {
    const key = await this.key();
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: ALG, kid: key.kid, typ: 'JWT' })
      .setIssuer(TOKEN_ISSUER)
      .setSubject(sub)
      .setAudience(TOKEN_SERVICE)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + ttlSeconds)
      .setJti(randomUUID())
      .sign(key.privateKey);
    return { token, issuedAt: new Date(now * 1000) };
  }

  /**
   * Verifies one of our JWTs; null when the string is not a JWT of ours (neither our issuer nor our key id),
   * GranaryError UNAUTHORIZED when it is but fails any check.
   */
  async verify(token: string, use: 'access' | 'refresh'): Promise<TokenClaims | null> {
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every((x) => /^[A-Za-z0-9_-]+$/.test(x))) return null;
    let kid: unknown;
    let iss: unknown;
    try {
      kid = decodeProtectedHeader(token).kid;
      iss = decodeJwt(token).iss;
    } catch {
      return null;
    }
    const key = await this.key();
    if (iss !== TOKEN_ISSUER && kid !== key.kid) return null;
    let claims: TokenClaims;
    try {
      ({ payload: claims } = await jwtVerify<TokenClaims>(token, key.publicKey, {
        algorithms: [ALG],
        issuer: TOKEN_ISSUER,
        audience: TOKEN_SERVICE,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['exp', 'iat', 'jti', 'sub'],
      }));
    } catch (e) {
      const code = (e as { code?: string }).code;
      const why =
        code === 'ERR_JWT_EXPIRED' ? 'token expired'
        : code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' ? 'token signature invalid (signed by another key?)'
        : `invalid token: ${(e as Error).message}`;
      throw new GranaryError('UNAUTHORIZED', why);
    }
    if ((claims.token_use === 'refresh') !== (use === 'refresh')) {
      throw new GranaryError('UNAUTHORIZED', use === 'refresh' ? 'not a refresh token' : 'a refresh token is not an access token');
    }
    return claims;
  }

  /** The user a token was issued to, re-checked: still there, same id, not disabled; its API token not revoked. */
  async principalOf(claims: TokenClaims, recheckToken: boolean): Promise<UserPrincipal> {
    const s = this.#s;
    const user = await s.accounts.getUser(String(claims.sub)).catch(() => null);
    if (!user || user.disabled || (claims.uid !== undefined && user.id !== claims.uid)) {
      throw new GranaryError('UNAUTHORIZED', 'the user of this token no longer exists or is disabled');
    }
    if (recheckToken && claims.tid) {
      const t = await s.accounts.getToken(claims.tid);
      if (!t || t.revokedAt || (t.expiresAt && t.expiresAt <= new Date().toISOString())) {
        throw new GranaryError('UNAUTHORIZED', 'the API token behind this refresh token was revoked or has expired');
      }
    }
    return {
      kind: 'user',
      id: user.id,
      name: user.name,
      admin: user.admin,
      via: 'jwt',
      readOnly: claims.ro === true,
      ...(claims.tid ? { tokenId: claims.tid } : {}),
    };
  }

  /** BearerVerifier: an access token → its principal, limited to its access claims. */
  async bearer(token: string): Promise<Principal | null> {
    const claims = await this.verify(token, 'access');
    if (!claims) return null;
    if (!claims.sub) return ANONYMOUS;
    const p = await this.principalOf(claims, false);
    const allowed = await allowedFrom(this.#s, Array.isArray(claims.access) ? claims.access : []);
    p.restrict = (repository, action) => allowed.get(repository)?.has(action) ?? false;
    return p;
  }

  async issue(p: Principal, scopes: readonly Scope[], offline: boolean): Promise<TokenResponse> {
    const s = this.#s;
    const ttl = s.config.oci.tokenTtlSeconds;
    const access = await grant(s, p, scopes);
    const user = p.kind === 'user' ? p : null;
    const who: TokenClaims = user ? { uid: user.id, ...(user.tokenId ? { tid: user.tokenId } : {}), ...(user.readOnly ? { ro: true } : {}) } : {};
    const { token, issuedAt } = await this.sign({ ...who, access }, user?.name ?? '', ttl);
    const res: TokenResponse = {
      token,
      access_token: token,
      expires_in: ttl,
      issued_at: issuedAt.toISOString(),
      scope: access.filter((a) => a.actions.length > 0).map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`).join(' '),
    };
    // A refresh token stands for the user's own credentials, so only those earn one (not another JWT).
    if (offline && user && user.via !== 'jwt') res.refresh_token = (await this.sign({ ...who, token_use: 'refresh' }, user.name, REFRESH_TTL_SECONDS)).token;
    return res;
  }
}

export interface TokenResponse {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  scope: string;
  refresh_token?: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Routes

const registered = new WeakSet<object>();

function list(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
}

function checkService(service: string | null | undefined): void {
  if (service && service !== TOKEN_SERVICE) throw new GranaryError('BAD_REQUEST', `unknown service ${JSON.stringify(service)}; this registry is "${TOKEN_SERVICE}"`);
}

/** Registers `GET/POST /token` in the caller's (the OCI `/v2`) scope and the JWT verifier with the auth service. */
export async function registerOciToken(app: FastifyInstance, s: Services): Promise<void> {
  const tokens = new TokenService(s);
  if (!registered.has(s.auth)) {
    registered.add(s.auth);
    s.auth.addBearerVerifier((t) => tokens.bearer(t));
  }
  app.decorate(BASE_URL_DECORATION, s.config.baseUrl ?? '');

  await app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT }, (_req, body, done) => {
      done(null, new URLSearchParams(body as string));
    });

    const send = (reply: FastifyReply, body: TokenResponse) =>
      reply.header('cache-control', 'no-store').header('pragma', 'no-cache').type('application/json').send(body);

    // token.md: credentials (Basic user + password or API token) were already checked by the auth hook.
    scope.get('/token', { config: { action: 'none' } }, async (req, reply) => {
      const q = req.query as Record<string, unknown>;
      checkService(list(q.service)[0]);
      const offline = list(q.offline_token)[0] === 'true';
      return send(reply, await tokens.issue(req.principal, parseScopes(list(q.scope)), offline));
    });

    // oauth.md: docker and containerd POST a form; credentials are in it, not in a header.
    scope.post('/token', { config: { action: 'none' } }, async (req, reply) => {
      if (!(req.body instanceof URLSearchParams)) throw new GranaryError('BAD_REQUEST', 'expected an application/x-www-form-urlencoded body');
      const form = req.body;
      checkService(form.get('service'));
      let p: Principal;
      const grantType = form.get('grant_type');
      if (grantType === 'password') {
        const user = form.get('username');
        const password = form.get('password');
        if (!user || !password) throw new GranaryError('BAD_REQUEST', 'grant_type=password needs username and password');
        p = await s.auth.login(user, password, req.ip);
      } else if (grantType === 'refresh_token') {
        const refresh = form.get('refresh_token');
        if (!refresh) throw new GranaryError('BAD_REQUEST', 'grant_type=refresh_token needs refresh_token');
        const claims = await tokens.verify(refresh, 'refresh');
        if (!claims || !claims.sub) throw new GranaryError('UNAUTHORIZED', 'invalid refresh token');
        p = await tokens.principalOf(claims, true);
        p.via = claims.tid ? 'token' : 'password';
      } else {
        throw new GranaryError('BAD_REQUEST', `unsupported grant_type ${JSON.stringify(grantType)}`);
      }
      const res = await tokens.issue(p, parseScopes(form.getAll('scope')), form.get('access_type') === 'offline');
      return send(reply, res);
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Challenge

const BASE_URL_DECORATION = 'granaryOciTokenBaseUrl';

/** The public base URL: config.baseUrl when set, else what the request says (honours X-Forwarded-* with trustProxy). */
export function publicBase(req: FastifyRequest): string {
  const configured = (req.server as unknown as Record<string, unknown>)[BASE_URL_DECORATION];
  if (typeof configured === 'string' && configured) return configured;
  return `${req.protocol}://${req.host}`;
}

/** A scope string for a challenge: `repository:<name>:<actions>`. */
export function repositoryScope(name: string, actions: readonly ('pull' | 'push' | 'delete' | '*')[]): string {
  return `repository:${name}:${actions.join(',')}`;
}

/**
 * The `WWW-Authenticate` value of a 401 from the registry:
 * `Bearer realm="<base>/v2/token",service="granary"[,scope="repository:<repo>/<name>:pull,push"]`.
 * `scope` is a whole scope string (see `repositoryScope`).
 */
export function ociChallenge(req: FastifyRequest, scope?: string): string {
  const q = (v: string) => v.replace(/["\\\r\n]/g, '');
  let h = `Bearer realm="${q(publicBase(req))}/v2/token",service="${TOKEN_SERVICE}"`;
  if (scope) h += `,scope="${q(scope)}"`;
  return h;
}
