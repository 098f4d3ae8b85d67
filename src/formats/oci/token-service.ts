/**
 * Issuing and verifying the OCI registry JWTs: signs access tokens carrying the granted `access` claims (and
 * refresh tokens, docker's "identity token"), verifies them, and turns an access token back into a principal
 * limited to its grants per image (token-grants.ts) — the auth hook and the OCI routes check the roles on top.
 *
 * Spec: distribution/distribution docs/spec/auth/jwt.md (claims `iss sub aud exp nbf iat jti access`).
 */
import { randomUUID } from 'node:crypto';
import { SignJWT, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import type { JWTPayload } from 'jose';
import type { Principal, UserPrincipal } from '../../auth/types.ts';
import { ANONYMOUS } from '../../auth/types.ts';
import type { Services } from '../../server/services.ts';
import { GranaryError } from '../../server/errors.ts';
import { ALG, loadOrCreateKey, type SigningKey } from './token-key.ts';
import { grant, grantsFrom, restrictTo, type AccessEntry, type Scope } from './token-grants.ts';

/** `iss` of every token, and the `service` of the challenge (= `aud`). */
export const TOKEN_ISSUER = 'granary';
export const TOKEN_SERVICE = 'granary';
/** Refresh tokens (offline tokens, docker's "identity token") live this long; their user and API token are re-checked on use. */
const REFRESH_TTL_SECONDS = 30 * 86_400;
const CLOCK_TOLERANCE_SECONDS = 30;

export interface TokenClaims extends JWTPayload {
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

export interface TokenResponse {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  scope: string;
  refresh_token?: string;
}

export class TokenService {
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

  /** BearerVerifier: an access token → its principal, limited to its access claims, image by image. */
  async bearer(token: string): Promise<Principal | null> {
    const claims = await this.verify(token, 'access');
    if (!claims) return null;
    if (!claims.sub) return ANONYMOUS;
    const p = await this.principalOf(claims, false);
    p.restrict = restrictTo(await grantsFrom(this.#s, Array.isArray(claims.access) ? claims.access : []));
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
