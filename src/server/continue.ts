/**
 * `Expect: 100-continue`, as Maven sends on every PUT and curl on large bodies. Node answers 100 by itself the
 * moment the headers arrive — before authentication — so a refused upload (bad credentials, no write permission,
 * an unknown repository) would still make the client send the whole body. Here Node's `checkContinue` event is
 * taken over for every path: a request goes through the onRequest hooks (authentication, authorization, the
 * repository lookup; server/auth-hook.ts) without a 100, and the `preParsing` hook sends it, just before a body
 * parser or handler reads the body. A route that decides more before it wants the bytes (a Maven release that
 * must not be redeployed) sets `config.deferContinue` and calls `sendContinue` itself. A request refused before
 * that gets its final status instead of 100; Node then closes that connection, since the body was never sent.
 */
import type { FastifyInstance } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The handler sends 100 Continue itself (`sendContinue`) once it has decided to accept the body. */
    deferContinue?: boolean;
  }
}

export function answerContinueAfterAuth(app: FastifyInstance): void {
  app.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => app.server.emit('request', req, res));
  app.addHook('preParsing', async (req, reply, payload) => {
    if (req.routeOptions.config?.deferContinue !== true) sendContinue(req.raw, reply.raw);
    return payload;
  });
}

const continued = new WeakSet<ServerResponse>();

/** Tells a client waiting on `Expect: 100-continue` to send the body; a no-op otherwise, and only once. */
export function sendContinue(req: IncomingMessage, res: ServerResponse): void {
  if (!/100-continue/i.test(String(req.headers.expect ?? '')) || continued.has(res) || res.headersSent) return;
  continued.add(res);
  res.writeContinue();
}
