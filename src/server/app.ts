/**
 * Assembles the HTTP server from the shared services: limits, request ids, the auth hook, metrics, health,
 * the management API and every format plug-in in its own encapsulated scope. Listening happens elsewhere
 * (main.ts / test helpers), so tests can build an app on port 0.
 */
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Services } from './services.ts';
import { registerAuthHook } from './auth-hook.ts';
import { registerHealth } from './health.ts';
import { normalizeError } from './normalize.ts';
import { GranaryError } from './errors.ts';
import { answerContinueAfterAuth } from './continue.ts';
import { loadTls, tlsEnabled, watchTls, type SecureContextTarget } from './tls.ts';
import { registerApi } from '../api/index.ts';
import { allFormats } from '../formats/registry.ts';

/** Writes the management API's error envelope: `{ error: { code, message, details? } }`. */
export function sendApiError(reply: FastifyReply, err: GranaryError): FastifyReply {
  reply.headers(err.headers);
  if (err.status === 401 && !reply.hasHeader('www-authenticate')) {
    reply.header('www-authenticate', 'Bearer realm="Granary", Basic realm="Granary"');
  }
  return reply
    .code(err.status)
    .type('application/json')
    .send({ error: { code: err.code, message: err.message, ...(err.details === undefined ? {} : { details: err.details }) } });
}

const BYTES_MARK = Symbol('granary.bytesMark');

/** Adds Fastify's JSON body parser (with prototype-poisoning protection) to a scope. */
export function parseJsonBodies(scope: FastifyInstance): void {
  scope.addContentTypeParser('application/json', { parseAs: 'string' }, scope.getDefaultJsonParser('error', 'error'));
}

export async function buildApp(s: Services): Promise<FastifyInstance> {
  const { config } = s;
  // HTTPS when both files are configured: read (and checked, errors naming the key) before anything listens.
  const tls = tlsEnabled(config.tls) ? config.tls : undefined;
  const http = { maxHeaderSize: config.limits.headerBytes };
  const app = Fastify<Server>({
    loggerInstance: s.log,
    bodyLimit: config.limits.jsonBodyBytes,
    // Formats declare HEAD themselves: an automatic HEAD would run the GET handler and open the blob.
    exposeHeadRoutes: false,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    trustProxy: config.trustProxy,
    requestTimeout: config.limits.requestTimeoutSeconds * 1000,
    // Requests arriving while the server drains get a 503 in the envelope of their format (the hook below), not
    // Fastify's own body.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // An https.Server is an http.Server underneath (same request handling, closeIdleConnections), so the rest
    // of the app is the same for both; Fastify ignores `http` when `https` is given, so the header limit goes in both.
    ...(tls ? { https: { ...loadTls(tls), ...http } } : { http }),
    // Unknown fields in a JSON body are an error, not silently dropped: a typo must not pass as success.
    ajv: { customOptions: { removeAdditional: false } },
    // OCI names and generic paths are long; the default 100 would cut them.
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 4096 },
  });

  // Raw bodies stay streams, whatever their content type: formats pipe them to the blob store without
  // buffering. Scopes that want parsed JSON (the API, npm) add a JSON parser for themselves.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null));

  if (tls) {
    const stopWatching = watchTls(app.server as unknown as SecureContextTarget, tls, s.log);
    app.addHook('onClose', async () => stopWatching());
  }

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    // close() reaps idle keep-alive connections once; one busy at that moment would stay open for the keep-alive
    // timeout (72 s) after its response and hold the shutdown until the grace period kills the process. Reap
    // connections as they become idle until the server is closed.
    const reaper = setInterval(() => app.server.closeIdleConnections(), 50);
    reaper.unref();
    app.server.once('close', () => clearInterval(reaper));
  });
  app.addHook('onRequest', async (_req, reply) => {
    if (!closing) return;
    reply.header('connection', 'close');
    throw new GranaryError('UNAVAILABLE', 'the server is shutting down; retry on another node or in a moment', { headers: { 'retry-after': '1' } });
  });
  registerAuthHook(app, s);
  answerContinueAfterAuth(app);

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const format = req.routeOptions.config?.format ?? (route.startsWith('/api/') ? 'api' : 'core');
    s.metrics.requests.inc({ method: req.method, route, format, status: String(reply.statusCode) });
    s.metrics.duration.observe({ method: req.method, route, format }, reply.elapsedTime / 1000);
    // Bytes are counted per connection since its previous response: requests on a keep-alive connection
    // are sequential, so the difference is this exchange, headers included.
    const sock = req.raw.socket as (typeof req.raw.socket & { [BYTES_MARK]?: [number, number] }) | null;
    if (sock) {
      const mark = sock[BYTES_MARK] ?? [0, 0];
      s.metrics.bytesIn.inc({ format }, Math.max(0, sock.bytesRead - mark[0]));
      s.metrics.bytesOut.inc({ format }, Math.max(0, sock.bytesWritten - mark[1]));
      sock[BYTES_MARK] = [sock.bytesRead, sock.bytesWritten];
    }
  });

  app.setErrorHandler((error, req, reply) => {
    const err = normalizeError(error);
    if (err.status >= 500) req.log.error({ err: error }, 'request failed');
    return sendApiError(reply, err);
  });
  app.setNotFoundHandler({}, (req, reply) => sendApiError(reply, new GranaryError('NOT_FOUND', `no route for ${req.method} ${req.url.split('?')[0]}`)));

  await registerHealth(app, s);
  await app.register(async (api) => registerApi(api, s), { prefix: '/api/v1' });
  for (const f of allFormats()) {
    await app.register(async (scope) => f.register(scope, s), { prefix: f.prefix ?? `/${f.name}` });
  }
  return app;
}
