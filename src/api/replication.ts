/**
 * /api/v1/replication: the signed change feed, blobs by digest for other nodes, the state checksum, the node's
 * replication status and its feed public key. Callers are admins or "replica" users: a user bound to `read` (or
 * more) on `*`, which a read-only token of such a user satisfies. Users, tokens and bindings never leave the node.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Services } from '../server/services.ts';
import { GranaryError } from '../server/errors.ts';
import { sendBlob } from '../server/send-blob.ts';
import { rolesFor } from '../meta/users.ts';
import { isDigest } from '../blobs/digest.ts';
import { buildPage, EPOCH_SETTING, FeedAheadError } from '../replication/feed.ts';
import { getSetting } from '../meta/settings.ts';
import { stateChecksum } from '../replication/state.ts';
import type { ReplicationNode } from '../replication/node.ts';
import { errors } from './schemas.ts';

async function requireReplicaRole(s: Services, req: FastifyRequest): Promise<ReplicationNode> {
  const p = req.principal;
  if (p.kind !== 'user') throw new GranaryError('UNAUTHORIZED');
  if (!p.admin && !(await rolesFor(s.meta.db, p.id, '*')).length) {
    throw new GranaryError('DENIED', 'replication needs an admin or a user with a role on every repository ("*")');
  }
  if (!s.replication) throw new GranaryError('UNAVAILABLE', 'replication is not set up on this node');
  return s.replication;
}

const hidden = { tags: ['replication'] };

export function replicationRoutes(s: Services) {
  return async (app: FastifyInstance) => {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    // Long polls end when the server starts closing, so shutdown does not wait out their timers.
    const closing = new AbortController();
    app.addHook('preClose', async () => closing.abort());

    r.get(
      '/replication/feed',
      {
        schema: {
          ...hidden,
          summary: 'Signed page of replicable events after `since`; waits up to `wait` seconds for one to arrive',
          querystring: Type.Object({
            since: Type.Integer({ minimum: 0, default: 0 }),
            wait: Type.Optional(Type.Integer({ minimum: 0, maximum: 120 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
          }),
          response: errors(401, 403, 409),
        },
        config: { action: 'read' },
      },
      async (req, reply) => {
        const node = await requireReplicaRole(s, req);
        const waitMs = Math.min(req.query.wait ?? 0, s.config.replication.waitSeconds) * 1000;
        // The response's 'close' fires when the client goes away (the request's fires once its body is read).
        const gone = new AbortController();
        reply.raw.once('close', () => gone.abort());
        const signal = AbortSignal.any([gone.signal, closing.signal]);
        try {
          const page = await buildPage(s.meta.db, node.chain, await node.signer(), { since: req.query.since, waitMs, signal, limit: req.query.limit });
          // Shutting down: this connection must not outlive the answer (an idle keep-alive one would hold the close).
          if (closing.signal.aborted) reply.header('connection', 'close');
          return page;
        } catch (e) {
          if (e instanceof FeedAheadError) throw new GranaryError('CONFLICT', e.message);
          throw e;
        }
      },
    );

    r.get(
      '/replication/blobs/:digest',
      {
        schema: { ...hidden, summary: "A blob from this node's own store, for replicas and peers", params: Type.Object({ digest: Type.String() }) },
        config: { action: 'read' },
      },
      async (req, reply) => {
        const node = await requireReplicaRole(s, req);
        if (!isDigest(req.params.digest)) throw new GranaryError('BAD_REQUEST', `invalid digest ${JSON.stringify(req.params.digest)}`);
        const st = await node.localBlobs.stat(req.params.digest);
        if (!st) throw new GranaryError('NOT_FOUND', `blob ${req.params.digest} is not on this node`);
        return sendBlob(req, reply, node.localBlobs, { digest: st.digest, size: st.size, contentType: 'application/octet-stream' });
      },
    );

    r.get(
      '/replication/state',
      {
        schema: {
          ...hidden,
          summary: 'Checksum over repositories, (repository, path, digest) and tags: equal on a primary and a caught-up replica',
          querystring: Type.Object({ repositories: Type.Optional(Type.String({ description: 'Comma-separated names or globs' })) }),
          response: {
            200: Type.Object({ checksum: Type.String(), repositories: Type.Integer(), assets: Type.Integer(), tags: Type.Integer(), position: Type.Integer() }),
            ...errors(401, 403),
          },
        },
        config: { action: 'read' },
      },
      async (req) => {
        const node = await requireReplicaRole(s, req);
        const globs = req.query.repositories?.split(',').filter(Boolean);
        return { ...(await stateChecksum(s.meta.db, globs)), position: node.follower?.status.position ?? 0 };
      },
    );

    r.get(
      '/replication/status',
      { schema: { ...hidden, summary: 'Role, feed position, lag, last contact and refusals of this node' }, config: { action: 'read' } },
      async (req) => {
        const node = await requireReplicaRole(s, req);
        const epoch = Number((await getSetting(s.meta.db, EPOCH_SETTING)) ?? 1);
        return { ...node.health(), epoch, readOnly: node.readOnlyReason(), follower: node.follower?.status ?? null };
      },
    );

    r.get(
      '/replication/mirrors',
      { schema: { ...hidden, summary: 'Mirroring rules and the state of each (position, copies, last reconciliation, last error)' }, config: { action: 'admin' } },
      async () => ({ mirrors: (s.replication?.mirrors ?? []).map((m) => m.status) }),
    );

    r.get(
      '/replication/key',
      { schema: { ...hidden, summary: "This node's feed public key (PEM), for `--primary-key` on replicas" }, config: { action: 'read' } },
      async (req) => {
        const node = await requireReplicaRole(s, req);
        const signer = await node.signer();
        return { fingerprint: signer.fingerprint, publicKey: signer.publicPem, epoch: Number((await getSetting(s.meta.db, EPOCH_SETTING)) ?? 1) };
      },
    );
  };
}
