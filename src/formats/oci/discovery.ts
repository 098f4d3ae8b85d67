/**
 * Content discovery: tags list (end-8a/8b), referrers (distribution-spec v1.1 "Listing Referrers"), and two
 * endpoints outside any image: the catalog and the version check `GET /v2/`.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { listScopes } from '../../meta/tags.ts';
import type { Services } from '../../server/services.ts';
import { GranaryError } from '../../server/errors.ts';
import type { OciHandler } from './context.ts';
import { OciError } from './errors.ts';
import { HEADERS, buildReferrersIndex, compareTags, linkHeader, paginate, parsePagination } from './http.ts';
import { MT } from './media-types.ts';
import { isValidDigest } from './names.ts';
import { imageExists, imageTags, referrers } from './store.ts';
import { readReferrers, readTags } from './members.ts';
import { OCI_FORMAT } from './target.ts';

/** Longest page answered without `n` (more come with a Link header). */
const MAX_PAGE = 10_000;

function sendJson(reply: FastifyReply, body: unknown, contentType = 'application/json'): FastifyReply {
  // A Buffer keeps the Content-Type exactly as given (Fastify appends a charset to JSON strings).
  return reply.header('content-type', contentType).send(Buffer.from(JSON.stringify(body)));
}

/** GET /v2/<name>/tags/list?n=&last= — in compareTags order; 404 NAME_UNKNOWN for a name with nothing in it. */
export const listTagsHandler: OciHandler = async (c, req, reply) => {
  const page = parsePagination(req.query as Record<string, unknown>);
  const merged = c.repo.kind === 'hosted' ? null : await readTags(c, req);
  const all = (c.repo.kind === 'hosted' ? await imageTags(c.s, c.repo, c.t.image) : (merged ?? [])).sort(compareTags);
  if (all.length === 0 && (c.repo.kind === 'hosted' ? !(await imageExists(c.s, c.repo, c.t.image)) : merged === null)) {
    throw new OciError('NAME_UNKNOWN', `repository name ${c.t.fullName} is not known to the registry`, { name: c.t.fullName });
  }
  const p = paginate(all, page, { maxN: MAX_PAGE });
  if (p.next) reply.header('link', linkHeader(`/v2/${c.t.fullName}/tags/list`, p.next));
  return sendJson(reply, { name: c.t.fullName, tags: p.items });
};

/** GET /v2/<name>/referrers/<digest>?artifactType= — always 200 with an index, empty when there are none. */
export const listReferrersHandler: OciHandler = async (c, req, reply) => {
  const subject = c.t.rest;
  if (!isValidDigest(subject)) throw new OciError('DIGEST_INVALID', 'invalid subject digest', { digest: subject });
  const artifactType = (req.query as Record<string, unknown>).artifactType as string | string[] | undefined;
  const { index, filtersApplied } = buildReferrersIndex(
    c.repo.kind === 'hosted' ? await referrers(c.s, c.repo, c.t.image, subject) : await readReferrers(c, req, subject),
    { artifactType },
  );
  if (filtersApplied) reply.header(HEADERS.OCI_FILTERS_APPLIED, filtersApplied);
  return sendJson(reply, index, MT.OCI_INDEX);
};

const byteOrder = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * GET /v2/_catalog?n=&last= — `<repository>/<image>` of every image with at least one tag, in the OCI
 * repositories the caller may read, in byte order. Anonymous callers who may read nothing get the challenge.
 */
export async function catalog(s: Services, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const page = parsePagination(req.query as Record<string, unknown>);
  const readable = [];
  for (const r of await s.repos.list({ format: OCI_FORMAT })) {
    if (await s.auth.can(req.principal, 'read', r)) readable.push(r);
  }
  if (readable.length === 0 && req.principal.kind === 'anonymous') throw new GranaryError('UNAUTHORIZED');
  const names: string[] = [];
  for (const r of readable) for (const image of await listScopes(s.meta.db, r.id)) names.push(`${r.name}/${image}`);
  names.sort(byteOrder);
  const p = paginate(names, page, { maxN: MAX_PAGE, compare: byteOrder });
  if (p.next) reply.header('link', linkHeader('/v2/_catalog', p.next));
  return sendJson(reply, { repositories: p.items });
}

/**
 * GET /v2/ — 200 `{}` for an authenticated caller. Anonymous callers get 401 and the challenge (as Docker Hub
 * and Distribution with auth do): that is how clients learn where and how to log in; clients without
 * credentials then continue anonymously and can still read public repositories. With `auth.anonymousWrite`
 * (no auth at all) everyone gets 200.
 */
export async function versionCheck(s: Services, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  if (req.principal.kind === 'anonymous' && !s.config.auth.anonymousWrite) throw new GranaryError('UNAUTHORIZED');
  return sendJson(reply, {});
}
