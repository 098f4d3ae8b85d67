/**
 * Go module repositories speaking the GOPROXY protocol at `/go/<repo>/`, so `GOPROXY=http://host/go/<repo>`
 * works unchanged:
 *   GET  /go/<repo>/<module>/@v/list                 versions, one a line (no pseudo-versions)
 *   GET  /go/<repo>/<module>/@v/<version>.info|.mod|.zip
 *   GET  /go/<repo>/<module>/@latest
 *   PUT  /go/<repo>/<module>/@v/<version>.zip        publish (hosted, or a group's writeMember)
 *   GET  /go/<repo>/sumdb/<name>/supported|latest|lookup/…|tile/…   checksum database proxy (sumdb.ts)
 * Module paths and versions are `!`-case-escaped in URLs. Errors are plain text — `go` prints the body after
 * "server response:" — and 404/410 let `go` move on to the next entry of a GOPROXY list.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { FormatPlugin } from '../types.ts';
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import type { Principal } from '../../auth/types.ts';
import { FORMAT_CONTRACT_VERSION } from '../types.ts';
import { GranaryError } from '../../server/errors.ts';
import { normalizeError } from '../../server/normalize.ts';
import { STALE_WARNING, readOrder, readThrough, sendProxyResult, writeTarget } from '../../repos/proxy/index.ts';
import { actorOf } from '../../auth/types.ts';
import { checkModuleVersion, parseRequestPath } from './module.ts';
import { hostedSource } from './hosted.ts';
import { fileRequest, proxySource } from './proxy.ts';
import { publish } from './publish.ts';
import { serveSumdb } from './sumdb.ts';
import { CONTENT_TYPES, betterLatest, sortVersions, type Answer, type GoSource, type LatestInfo } from './source.ts';

export const goOptionsSchema = Type.Object(
  {
    /** Checksum databases served under /go/<repo>/sumdb/<name>/: name → URL, e.g. {"sum.golang.org": "https://sum.golang.org"}. */
    sumdb: Type.Optional(
      Type.Record(Type.String(), Type.String({ pattern: '^https?://' }), { propertyNames: { pattern: '^[A-Za-z0-9][A-Za-z0-9.-]*$' }, maxProperties: 16 }),
    ),
  },
  { additionalProperties: false },
);

type Req = FastifyRequest<{ Params: { repo: string; '*': string } }>;

/**
 * A group's `list` merges its members', its `@latest` is the best of theirs (files: readThrough, first member
 * wins). As in readThrough, a proxy member whose upstream fails is passed over when another member answers; the
 * failure surfaces only when nobody could.
 */
function groupSource(members: GoSource[]): GoSource {
  const ask = async <T>(f: (m: GoSource) => Promise<T | null>): Promise<T[]> => {
    const out: T[] = [];
    let failure: unknown = null;
    for (const m of members) {
      try {
        const got = await f(m);
        if (got !== null) out.push(got);
      } catch (e) {
        failure ??= e;
      }
    }
    if (!out.length && failure) throw failure;
    return out;
  };
  return {
    async list(module) {
      const got = await ask((m) => m.list(module));
      if (!got.length) return null;
      return { value: sortVersions(got.flatMap((a) => a.value)), stale: got.some((a) => a.stale) };
    },
    async latest(module) {
      let best: Answer<LatestInfo> | null = null;
      for (const l of await ask((m) => m.latest(module))) {
        if (!best || betterLatest(l.value.Version, best.value.Version)) best = l;
      }
      return best;
    },
  };
}

async function sourceFor(s: Services, repo: RepositoryRecord, p: Principal): Promise<GoSource> {
  const one = (r: RepositoryRecord) => (r.kind === 'proxy' ? proxySource(s, r) : hostedSource(s, r));
  if (repo.kind !== 'group') return one(repo);
  return groupSource((await readOrder(s, repo, p)).map(one));
}

/**
 * `list` and `@latest`: generated per request, revalidated by clients (no-cache) with an ETag over the body, so a
 * Granary proxy in front of this one (or any HTTP cache) gets a 304 instead of the list again.
 */
function sendMutable(req: FastifyRequest, reply: FastifyReply, stale: boolean, type: string, body: string): FastifyReply {
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
  reply.type(type).header('cache-control', 'no-cache').header('etag', etag);
  if (stale) reply.header('warning', STALE_WARNING);
  const inm = req.headers['if-none-match'];
  if (inm && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)) return reply.code(304).send();
  return reply.send(body);
}

async function routes(app: FastifyInstance, s: Services): Promise<void> {
  app.setErrorHandler((error, req, reply) => {
    const err = normalizeError(error);
    if (err.status >= 500) req.log.error({ err: error }, 'go request failed');
    if (err.status === 401) reply.header('www-authenticate', 'Basic realm="Granary"');
    // Plain text: the go command shows this body to its user verbatim.
    return reply.code(err.status).headers(err.headers).type('text/plain; charset=utf-8').send(err.message + '\n');
  });

  const cfg = (action: 'read' | 'write') => ({ action, repoParam: 'repo', format: 'go' });

  const get = async (req: Req, reply: FastifyReply) => {
    const repo = req.repository!;
    const rest = req.params['*'];
    if (rest.startsWith('sumdb/')) return serveSumdb(s, req, reply, repo, rest);
    const r = parseRequestPath(rest);
    if (!r) throw new GranaryError('NOT_FOUND', `not found: ${rest}`);
    if (r.file === 'list') {
      const vs = await (await sourceFor(s, repo, req.principal)).list(r.module);
      if (vs === null) throw new GranaryError('NOT_FOUND', `not found: module ${r.module}: no versions in ${repo.name}`);
      return sendMutable(req, reply, vs.stale, CONTENT_TYPES.list, vs.value.map((v) => v + '\n').join(''));
    }
    if (r.file === 'latest') {
      const l = await (await sourceFor(s, repo, req.principal)).latest(r.module);
      if (!l) throw new GranaryError('NOT_FOUND', `not found: module ${r.module}: no versions in ${repo.name}`);
      return sendMutable(req, reply, l.stale, CONTENT_TYPES.latest, JSON.stringify(l.value));
    }
    const mv = { path: r.module, version: r.version };
    let valid = true;
    try {
      checkModuleVersion(mv.path, mv.version);
    } catch {
      valid = false;
    }
    // Only `.info` may name a query (`@v/master.info`, `@v/v1.2.info`), and only a proxy can resolve one.
    if (!valid && r.file !== 'info') throw new GranaryError('NOT_FOUND', `not found: ${mv.path}@${mv.version}: invalid version`);
    const request = fileRequest(r.escaped, mv.version, r.file);
    const result = await readThrough(s, repo, req.principal, (m) => (m.kind === 'proxy' || valid ? request : null));
    return sendProxyResult(req, reply, s, result, {
      contentType: CONTENT_TYPES[r.file],
      notFound: () => new GranaryError('NOT_FOUND', `not found: ${mv.path}@${mv.version}: unknown revision ${mv.version}`),
    });
  };
  app.get('/:repo/*', { config: cfg('read') }, get);
  app.head('/:repo/*', { config: cfg('read') }, get);

  app.put('/:repo/*', { config: cfg('write') }, async (req: Req, reply) => {
    const r = parseRequestPath(req.params['*']);
    if (!r || r.file !== 'zip') throw new GranaryError('METHOD_NOT_ALLOWED', 'publish by uploading a module zip: PUT /go/<repo>/<module>/@v/<version>.zip');
    const target = await writeTarget(s, req.repository!, req.principal);
    const ac = new AbortController();
    req.raw.once('close', () => {
      if (!req.raw.complete) ac.abort();
    });
    const len = req.headers['content-length'];
    const out = await publish(s, target, {
      mv: { path: r.module, version: r.version },
      data: req.raw,
      expectedSize: len === undefined ? undefined : Number(len),
      signal: ac.signal,
      actor: actorOf(req.principal),
    });
    return reply.code(201).header('location', `/go/${target.name}/${r.escaped}/@v/${req.params['*'].split('/@v/').pop()}`).send(out);
  });
}

export const goFormat: FormatPlugin = {
  name: 'go',
  contract: FORMAT_CONTRACT_VERSION,
  kinds: ['hosted', 'proxy', 'group'],
  optionsSchema: goOptionsSchema,
  register: routes,
};
