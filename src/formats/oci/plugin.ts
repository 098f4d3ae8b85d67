/**
 * The OCI format plug-in: OCI Distribution v1.1 under /v2 — hosted repositories, proxies of an upstream registry
 * (proxy.ts, over src/repos/proxy) and groups (members.ts). It owns its scope's error
 * envelope (`{errors:[{code,message,detail}]}` for every failure, core errors included, 401s with the Docker
 * token-auth challenge: challenge.ts), the `Docker-Distribution-API-Version` header on every answer, the token
 * endpoint (token.ts) and the routing table (routes.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { FormatPlugin } from '../types.ts';
import type { Services } from '../../server/services.ts';
import { FORMAT_CONTRACT_VERSION } from '../types.ts';
import { OciOptionsSchema } from './context.ts';
import { OciError } from './errors.ts';
import { toOciFailure } from './failure.ts';
import { API_VERSION_VALUE, HEADERS } from './http.ts';
import { registerRoutes } from './routes.ts';
import { GranaryError } from '../../server/errors.ts';
import { OCI_FORMAT } from './target.ts';
import { ociChallenge, scopeOf } from './challenge.ts';
import { registerOciToken } from './token.ts';

async function register(app: FastifyInstance, s: Services): Promise<void> {
  app.decorateRequest('oci', null);

  app.addHook('onRequest', (_req, reply, done) => {
    reply.header(HEADERS.API_VERSION, API_VERSION_VALUE);
    done();
  });

  app.setErrorHandler((error, req, reply) => {
    const f = toOciFailure(error, req.oci?.kind);
    if (f.status >= 500) req.log.error({ err: error }, 'oci request failed');
    reply.headers(f.headers);
    reply.header(HEADERS.API_VERSION, API_VERSION_VALUE);
    if (f.status === 401) {
      const insufficient = error instanceof GranaryError && (error.details as { insufficientScope?: boolean } | undefined)?.insufficientScope;
      reply.header('www-authenticate', ociChallenge(req, scopeOf(req)) + (insufficient ? ',error="insufficient_scope"' : ''));
    }
    // An oversized body is left unread: close the connection rather than drain it.
    if (f.status === 413) reply.header('connection', 'close');
    return reply.code(f.status).header('content-type', 'application/json; charset=utf-8').send(JSON.stringify({ errors: f.errors }));
  });

  app.setNotFoundHandler((req, reply) => {
    reply.header(HEADERS.API_VERSION, API_VERSION_VALUE);
    const e = new OciError('UNSUPPORTED', `${req.method} ${req.url.split('?')[0]} is not part of the API`, undefined, 404);
    return reply.code(404).header('content-type', 'application/json; charset=utf-8').send(JSON.stringify({ errors: [e.toEntry()] }));
  });

  await registerOciToken(app, s);
  await registerRoutes(app, s);
}

export const ociFormat: FormatPlugin = {
  name: OCI_FORMAT,
  contract: FORMAT_CONTRACT_VERSION,
  kinds: ['hosted', 'proxy', 'group'],
  prefix: '/v2',
  optionsSchema: OciOptionsSchema,
  register,
};
