/**
 * The `WWW-Authenticate` challenge of a 401 from the registry, which sends docker, containerd and
 * containers/image to the token endpoint (token.ts) for a token naming what the request needs on its image —
 * the same action the OCI routes then require on that image (`imageAction`).
 *
 * Spec: distribution/distribution docs/spec/auth/token.md ("How to authenticate"), scope.md.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { V2Kind } from './names.ts';
import { TOKEN_SERVICE } from './token-service.ts';

const BASE_URL_DECORATION = 'granaryOciTokenBaseUrl';

/** Remembers config.baseUrl in the OCI scope, for `publicBase`. */
export function decorateBaseUrl(app: FastifyInstance, baseUrl: string | undefined): void {
  app.decorate(BASE_URL_DECORATION, baseUrl ?? '');
}

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
 * What a request does to the image it names, as a token grants it: every step of an upload (even reading its
 * status or cancelling it) is pushing; DELETE of a manifest or blob is delete; other reads pull, writes push.
 */
export function imageAction(method: string, kind: V2Kind): 'read' | 'write' | 'delete' {
  if (kind === 'blobs/uploads') return 'write';
  if (method === 'DELETE') return 'delete';
  return method === 'GET' || method === 'HEAD' ? 'read' : 'write';
}

/** The token scope a 401 asks for: what the request needs on the image it named (Distribution asks pull,push to push). */
export function scopeOf(req: FastifyRequest): string | undefined {
  if (req.url === '/v2/_catalog' || req.url.startsWith('/v2/_catalog?')) return 'registry:catalog:*';
  const t = req.oci;
  if (!t) return undefined;
  // Mirror mode (`?ns=`): the token request will not carry ?ns=, so the scope names the proxy repository itself.
  if (t.mirror) return repositoryScope(`${t.repo}/${t.image}`, ['pull']);
  const action = imageAction(req.method, t.kind);
  return repositoryScope(t.fullName, action === 'read' ? ['pull'] : action === 'delete' ? ['delete'] : ['pull', 'push']);
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
