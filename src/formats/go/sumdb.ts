/**
 * Checksum-database proxying (go.dev/ref/mod, "Checksum database" via a proxy): `go` asks
 * `<GOPROXY>/sumdb/<name>/supported` first and, on 200, fetches `/latest`, `/lookup/…` and `/tile/…` through the
 * proxy instead of contacting the sumdb itself — which is what lets GOSUMDB verification work where only the
 * registry is reachable. Requests are forwarded to the sumdb URL the repository's `sumdb` option names, streamed
 * back unchanged (the client verifies the signed tree itself, so nothing here needs trusting), with cache headers
 * for downstream caches: full tiles never change, partial `.p/` tiles, lookups and `latest` do.
 */
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { EnvHttpProxyAgent, fetch } from 'undici';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { GranaryError } from '../../server/errors.ts';

export interface GoOptions {
  sumdb?: Record<string, string>;
}

export const goOptions = (repo: RepositoryRecord): GoOptions => (repo.config.options ?? {}) as GoOptions;

/** What may follow `sumdb/<name>/`: the sumdb protocol's three endpoints, nothing that could climb out. */
const SUMDB_PATH = /^(latest|lookup\/[^\\]+|tile\/[0-9]+\/(?:data|[0-9]+)\/[0-9x/.p]+)$/;

const UPSTREAM_TIMEOUT_MS = 30_000;

/**
 * HTTPS_PROXY / HTTP_PROXY / NO_PROXY apply as for proxy upstreams (docs/proxy.md). Not the proxy repositories'
 * own clients: those carry the upstream's credentials, which must never travel to a checksum database.
 */
let dispatcher: EnvHttpProxyAgent | null = null;

function cacheControl(op: string): string {
  if (op.startsWith('tile/') && !op.includes('.p/')) return 'public, max-age=31536000, immutable';
  if (op.startsWith('lookup/')) return 'public, max-age=300';
  return 'no-cache'; // latest and partial tiles change as the log grows
}

/** Handles `sumdb/<name>/<op>` (the part after `/go/<repo>/`). */
export async function serveSumdb(repo: RepositoryRecord, rest: string, method: string, reply: FastifyReply): Promise<FastifyReply> {
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
  const url = upstream.replace(/\/+$/, '') + '/' + op;
  let res: Awaited<ReturnType<typeof fetch>>;
  try {
    dispatcher ??= new EnvHttpProxyAgent();
    res = await fetch(url, { method: method === 'HEAD' ? 'HEAD' : 'GET', signal: AbortSignal.timeout(UPSTREAM_TIMEOUT_MS), redirect: 'follow', dispatcher });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
    throw new GranaryError('UNAVAILABLE', `checksum database ${name} unreachable: ${cause}`);
  }
  // 404/410 pass through so `go` reports them as such; other failures are the sumdb's, not the client's.
  if (res.status === 404 || res.status === 410) {
    const text = (await res.text()).slice(0, 1000);
    throw new GranaryError(res.status === 404 ? 'NOT_FOUND' : 'GONE', text || `not found: ${op}`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new GranaryError('UNAVAILABLE', `checksum database ${name} answered ${res.status} for ${op}`);
  }
  reply.code(200).type(res.headers.get('content-type') ?? 'application/octet-stream').header('cache-control', cacheControl(op));
  const len = res.headers.get('content-length');
  if (len) reply.header('content-length', len);
  if (method === 'HEAD' || !res.body) {
    await res.body?.cancel();
    return reply.send();
  }
  return reply.send(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>));
}
