/**
 * Upstream authentication: Basic, a static Bearer token, and the Docker token-auth challenge flow
 * (`WWW-Authenticate: Bearer realm=…,service=…,scope=…` → GET the realm with Basic or no credentials, or POST an
 * OAuth2 refresh-token grant as Azure Container Registry wants) with tokens cached until shortly before expiry.
 * The last challenge seen per upstream origin is remembered, so later requests fetch their scope's token up
 * front instead of paying a 401 round trip each time.
 */
import { createHash } from 'node:crypto';
import { request, type Dispatcher } from 'undici';
import { GranaryError } from '../../server/errors.ts';
import type { ProxyOptions } from './options.ts';
import { UpstreamError } from './upstream-error.ts';

export interface Challenge {
  realm: string;
  service?: string;
  scope?: string;
}

export interface TokenCache {
  tokens: Map<string, { token: string; until: number }>;
  challenges: Map<string, Challenge>;
  /** Token endpoint calls made (for tests and metrics). */
  fetched: number;
}

export function createTokenCache(): TokenCache {
  return { tokens: new Map(), challenges: new Map(), fetched: 0 };
}

/** Parses a Bearer challenge; null for any other scheme. */
export function challengeOf(header: string | undefined): Challenge | null {
  if (!header || !/^bearer\s/i.test(header)) return null;
  const params: Record<string, string> = {};
  for (const m of header.slice(7).matchAll(/([a-zA-Z_]+)="([^"]*)"/g)) params[m[1].toLowerCase()] = m[2];
  if (!params.realm) return null;
  return { realm: params.realm, service: params.service, scope: params.scope };
}

/** Tokens are dropped this long before they expire, so a request never carries one that dies on the way. */
const EXPIRY_MARGIN_MS = 10_000;
const DEFAULT_TOKEN_SECONDS = 60;

/** Tokens are shared only by proxies with the very same credentials (never across different secrets). */
function credentialKey(o: ProxyOptions): string {
  const a = o.auth;
  const secret = a.type === 'basic' ? `${a.username}:${a.password}` : a.type === 'oauth2' ? a.refreshToken : '';
  return `${a.type}:${createHash('sha256').update(secret).digest('hex').slice(0, 32)}`;
}

async function fetchToken(cache: TokenCache, o: ProxyOptions, ch: Challenge, scope: string | undefined, dispatcher: Dispatcher): Promise<string> {
  const url = new URL(ch.realm);
  let res: Dispatcher.ResponseData;
  cache.fetched++;
  if (o.auth.type === 'oauth2') {
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: o.auth.refreshToken, service: ch.service ?? '' });
    if (scope) form.set('scope', scope);
    res = await request(url, { method: 'POST', dispatcher, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
  } else {
    if (ch.service) url.searchParams.set('service', ch.service);
    if (scope) url.searchParams.set('scope', scope);
    const headers: Record<string, string> = {};
    if (o.auth.type === 'basic') headers.authorization = 'Basic ' + Buffer.from(`${o.auth.username}:${o.auth.password}`).toString('base64');
    res = await request(url, { method: 'GET', dispatcher, headers });
  }
  const text = await res.body.text();
  if (res.statusCode !== 200) {
    throw new UpstreamError(`the upstream's token service ${url.origin}${url.pathname} refused the proxy's credentials (HTTP ${res.statusCode}): check the upstream auth`, res.statusCode);
  }
  let body: { token?: string; access_token?: string; expires_in?: number };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new GranaryError('UPSTREAM_FAILED', `the upstream's token service ${url.origin} answered something that is not JSON`);
  }
  const token = body.token ?? body.access_token;
  if (!token) throw new GranaryError('UPSTREAM_FAILED', `the upstream's token service ${url.origin} answered no token`);
  const ttl = (body.expires_in ?? DEFAULT_TOKEN_SECONDS) * 1000;
  cache.tokens.set(tokenKey(o, ch, scope), { token, until: Date.now() + ttl - Math.min(EXPIRY_MARGIN_MS, ttl / 2) });
  return token;
}

const tokenKey = (o: ProxyOptions, ch: Challenge, scope: string | undefined) => `${credentialKey(o)}|${ch.realm}|${ch.service ?? ''}|${scope ?? ''}`;

/**
 * The Authorization header for a request to `url`. With `challenge` (just answered by the upstream) a token is
 * fetched for it; without, a cached token for the origin's last challenge is used, or fetched when a scope is
 * known. Basic credentials go as they are when no challenge was ever seen.
 */
export async function authorize(
  cache: TokenCache,
  o: ProxyOptions,
  url: string,
  scope: string | undefined,
  dispatcher: Dispatcher,
  challenge: Challenge | null,
): Promise<string | null> {
  if (o.auth.type === 'bearer') return `Bearer ${o.auth.token}`;
  const origin = new URL(url).origin;
  if (challenge) {
    cache.challenges.set(origin, { realm: challenge.realm, service: challenge.service });
    return `Bearer ${await fetchToken(cache, o, challenge, challenge.scope ?? scope, dispatcher)}`;
  }
  const known = cache.challenges.get(origin);
  if (known) {
    const hit = cache.tokens.get(tokenKey(o, known, scope));
    if (hit && hit.until > Date.now()) return `Bearer ${hit.token}`;
    if (scope) return `Bearer ${await fetchToken(cache, o, known, scope, dispatcher)}`;
  }
  if (o.auth.type === 'basic') return 'Basic ' + Buffer.from(`${o.auth.username}:${o.auth.password}`).toString('base64');
  return null;
}
