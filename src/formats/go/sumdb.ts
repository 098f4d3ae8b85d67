/**
 * Checksum-database proxying (go.dev/ref/mod, "Checksum database" via a proxy): `go` asks
 * `<GOPROXY>/sumdb/<name>/supported` first and, on 200, fetches `/latest`, `/lookup/…` and `/tile/…` through the
 * proxy instead of contacting the sumdb itself — which is what lets GOSUMDB verification work where only the
 * registry is reachable. Requests go to the sumdb URL the repository's `sumdb` option names; the answers are kept
 * in the repository (sumdb-cache.ts), so verification keeps working while the sumdb is down, and served unchanged
 * (the client verifies the signed tree itself, so nothing here needs trusting), with cache headers for downstream
 * caches: full tiles never change, partial `.p/` tiles, lookups and `latest` do.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { GranaryError } from '../../server/errors.ts';
import { sendProxyResult } from '../../repos/proxy/index.ts';
import { readSumdb } from './sumdb-cache.ts';

export interface GoOptions {
  sumdb?: Record<string, string>;
}

export const goOptions = (repo: RepositoryRecord): GoOptions => (repo.config.options ?? {}) as GoOptions;

/** What may follow `sumdb/<name>/`: the sumdb protocol's three endpoints, nothing that could climb out. */
const SUMDB_PATH = /^(latest|lookup\/[^\\]+|tile\/[0-9]+\/(?:data|[0-9]+)\/[0-9x/.p]+)$/;

function cacheControl(op: string): string {
  if (op.startsWith('tile/') && !op.includes('.p/')) return 'public, max-age=31536000, immutable';
  if (op.startsWith('lookup/')) return 'public, max-age=300';
  return 'no-cache'; // latest and partial tiles change as the log grows
}

/** Handles `sumdb/<name>/<op>` (the part after `/go/<repo>/`) for GET and HEAD. */
export async function serveSumdb(s: Services, req: FastifyRequest, reply: FastifyReply, repo: RepositoryRecord, rest: string): Promise<FastifyReply> {
  const m = /^sumdb\/([^/]+)\/(.+)$/.exec(rest);
  if (!m) throw new GranaryError('NOT_FOUND', `not found: ${rest}`);
  const [, name, op] = m;
  const dbs = goOptions(repo).sumdb ?? {};
  // Own keys only: a name like "__proto__" or "constructor" must not find something on Object.prototype.
  const upstream = Object.hasOwn(dbs, name) ? dbs[name] : undefined;
  if (typeof upstream !== 'string') throw new GranaryError('NOT_FOUND', `not found: checksum database ${name} is not proxied by ${repo.name}`);
  if (op === 'supported') return reply.code(200).type('text/plain; charset=utf-8').send('');
  if (!SUMDB_PATH.test(op) || op.split('/').some((seg) => seg === '..' || seg === '.' || seg === '')) {
    throw new GranaryError('NOT_FOUND', `not found: ${op} is not a checksum database endpoint`);
  }
  const answer = await readSumdb(s, repo, { name, upstream, op });
  const headers = { 'cache-control': cacheControl(op) };
  // Cached answers go through sendBlob (ETag, ranges, 304) and carry `Warning: 110` when served stale.
  if (answer.kind === 'cached') return sendProxyResult(req, reply, s, { kind: 'cached', asset: answer.asset, repo, stale: answer.stale }, { headers });
  reply.code(200).type(answer.contentType).headers(headers);
  return reply.send(req.method === 'HEAD' ? undefined : answer.body);
}
