/** Liveness (/healthz), readiness (/readyz: database and blob store usable) and Prometheus (/metrics). */
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { Readable } from 'node:stream';
import type { Services } from './services.ts';

/** sha256 of the empty string: readiness writes this blob (deduplicated after the first time). */
const PROBE_DIGEST = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** Probes run often (load balancers, kubelets): a result is reused this long. */
const READY_CACHE_MS = 2_000;

export async function registerHealth(app: FastifyInstance, s: Services): Promise<void> {
  const hidden = { schema: { hide: true } };
  app.get('/healthz', { ...hidden, config: { action: 'none' } }, async () => ({ status: 'ok' }));

  let last: { at: number; ok: boolean; status: string; checks: Record<string, { ok: boolean; error?: string }> } | null = null;
  app.get('/readyz', { ...hidden, config: { action: 'none' } }, async (_req, reply) => {
    if (last && Date.now() - last.at < READY_CACHE_MS) {
      return reply.code(last.ok ? 200 : 503).send({ status: last.status, checks: last.checks });
    }
    const checks: Record<string, { ok: boolean; error?: string }> = {};
    try {
      await sql`select 1`.execute(s.meta.db);
      checks.database = { ok: true };
    } catch (e) {
      checks.database = { ok: false, error: (e as Error).message };
    }
    try {
      // A write, not a lookup: a store that can still answer "not found" may be unable to take a push.
      await s.blobs.put(Readable.from([]), { expectedDigest: PROBE_DIGEST, expectedSize: 0 });
      checks.blobs = { ok: true };
    } catch (e) {
      checks.blobs = { ok: false, error: (e as Error).message };
    }
    const ok = Object.values(checks).every((c) => c.ok);
    // Replication is reported, not gating: a replica cut off from its primary (or refusing a bad feed) still
    // serves everything it has, so it stays ready and says "degraded".
    const replication = s.replication?.health();
    const status = !ok ? 'unavailable' : replication && !replication.ok ? 'degraded' : 'ready';
    last = { at: Date.now(), ok, checks: replication ? { ...checks, replication } : checks, status };
    return reply.code(ok ? 200 : 503).send({ status, checks: last.checks });
  });

  app.get('/metrics', { ...hidden, config: { action: 'none' } }, async (_req, reply) => {
    const body = await s.metrics.registry.metrics();
    return reply.type(s.metrics.registry.contentType).send(body);
  });
}
