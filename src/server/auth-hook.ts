/**
 * The one place that decides who may do what. Every route declares `config.action` (checked at start by
 * an onRoute hook); this onRequest hook authenticates, applies the per-principal rate limit, resolves the
 * repository the route names and checks the action on it — before any handler or body parser runs.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { Action, AnonymousPrincipal, Principal } from '../auth/types.ts';
import { ANONYMOUS } from '../auth/types.ts';
import type { RepositoryRecord } from '../meta/repos.ts';
import type { Services } from './services.ts';
import { GranaryError } from './errors.ts';

export interface RouteAuth {
  /**
   * What the route does; 'none' = anyone (the handler may still look at `request.principal`). A function when one
   * route serves several actions (OCI's DELETE: `delete` on a manifest, `write` to cancel one's own upload).
   */
  action?: Action | 'none' | ((req: FastifyRequest) => Action | Promise<Action>);
  /** Route param holding the repository name. */
  repoParam?: string;
  /** Or: a function extracting it (e.g. the first segment of an OCI name, which may need a lookup). */
  repo?: (req: FastifyRequest) => string | null | Promise<string | null>;
  /** Format the repository must be of; a repository of another format answers "unknown". */
  format?: string;
}

declare module 'fastify' {
  interface FastifyContextConfig extends RouteAuth {}
  interface FastifyRequest {
    principal: Principal;
    repository: RepositoryRecord | null;
  }
}

export function registerAuthHook(app: FastifyInstance, s: Services): void {
  // Value-type placeholders declared up front (Fastify's advice); the hook sets real values per request.
  app.decorateRequest('principal', null as unknown as AnonymousPrincipal);
  app.decorateRequest('repository', null);

  app.addHook('onRoute', (route) => {
    const cfg = route.config as RouteAuth | undefined;
    if (!cfg?.action) {
      throw new Error(`route ${route.method} ${route.url} declares no config.action (read, write, delete, admin or none)`);
    }
  });

  const rl = s.config.rateLimit;
  const perUser = rl.enabled ? new RateLimiterMemory({ points: rl.requestsPerMinute, duration: 60 }) : null;
  const perIp = rl.enabled ? new RateLimiterMemory({ points: rl.anonymousPerMinute, duration: 60 }) : null;

  app.addHook('onRequest', async (req) => {
    const cfg = req.routeOptions.config as RouteAuth;
    req.principal = ANONYMOUS;
    if (!cfg?.action) return; // 404 handler
    const action = typeof cfg.action === 'function' ? await cfg.action(req) : cfg.action;
    // A read-only replica: every content write or delete, and every change to repositories, stops here — before
    // authentication, since the primary's users and tokens are not replicated and a client pushing with them
    // must learn where to push, not that its token is unknown.
    const readOnly = s.replication?.readOnlyReason();
    if (readOnly && (action === 'write' || action === 'delete' || (action === 'admin' && req.method !== 'GET' && req.method !== 'HEAD' && req.url.startsWith('/api/v1/repositories')))) {
      throw new GranaryError('DENIED', readOnly);
    }
    const p = await s.auth.authenticate({ authorization: req.headers.authorization, ip: req.ip });
    req.principal = p;
    if (perUser && perIp && !(p.kind === 'user' && p.admin)) {
      try {
        await (p.kind === 'user' ? perUser.consume(`u:${p.id}`) : perIp.consume(`ip:${req.ip}`));
      } catch (e) {
        if (!(e instanceof RateLimiterRes)) throw e;
        throw new GranaryError('TOO_MANY_REQUESTS', 'rate limit exceeded', {
          headers: { 'retry-after': String(Math.max(1, Math.ceil(e.msBeforeNext / 1000))) },
        });
      }
    }
    if (action === 'none') return;
    const name = cfg.repo ? await cfg.repo(req) : cfg.repoParam ? (req.params as Record<string, string>)[cfg.repoParam] : null;
    if (name === null || name === undefined) {
      await s.auth.require(p, action, null);
      return;
    }
    const repo = await s.repos.get(name);
    if (!repo || (cfg.format && repo.format !== cfg.format)) {
      // Anonymous callers cannot tell a missing repository from a private one.
      if (p.kind === 'anonymous') throw new GranaryError('UNAUTHORIZED');
      throw new GranaryError('REPOSITORY_UNKNOWN', `repository ${name} not found`);
    }
    req.repository = repo;
    await s.auth.require(p, action, repo);
  });
}
