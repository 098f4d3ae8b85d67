/**
 * The Docker registry token endpoint, `GET/POST /v2/token`, and the registration of its JWT verifier with the
 * auth service. The pieces live beside it: token-key.ts (the signing key), token-grants.ts (scopes and what a
 * token grants, per image name), token-service.ts (issuing and verifying), challenge.ts (the 401 challenge).
 *
 * Specs (distribution/distribution docs/spec/auth): token.md (GET `/token?service=&scope=&account=&offline_token=`
 * with Basic or no credentials → `{token, access_token, expires_in, issued_at[, refresh_token]}`), oauth.md
 * (POST form: `grant_type=password|refresh_token`, `access_type=offline`).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Principal } from '../../auth/types.ts';
import type { Services } from '../../server/services.ts';
import { GranaryError } from '../../server/errors.ts';
import { decorateBaseUrl } from './challenge.ts';
import { parseScopes } from './token-grants.ts';
import { TOKEN_SERVICE, TokenService, type TokenResponse } from './token-service.ts';

// What this module exported before it was split, so imports of token.ts keep working.
export { ociChallenge, publicBase, repositoryScope } from './challenge.ts';
export { parseScopes, type AccessEntry, type Scope } from './token-grants.ts';
export { TOKEN_ISSUER, TOKEN_SERVICE, type TokenResponse } from './token-service.ts';

const FORM_BODY_LIMIT = 16 * 1024;

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
  decorateBaseUrl(app, s.config.baseUrl);

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
