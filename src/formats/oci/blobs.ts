/**
 * Blob endpoints: GET/HEAD `/v2/<name>/blobs/<digest>` (end-2; ranges, ETag, conditional via sendBlob) and
 * DELETE (end-10: unlinks the blob from the image; the bytes stay for GC, other images keep their links).
 */
import type { OciHandler } from './context.ts';
import { OciError } from './errors.ts';
import { assertValidDigest } from './names.ts';
import { findBlob, unlinkBlob } from './store.ts';
import { sendBlob } from '../../server/send-blob.ts';
import { sendProxyResult } from '../../repos/proxy/index.ts';
import { readBlob } from './members.ts';
import { byRoles } from '../../repos/content.ts';

export const getBlob: OciHandler = async (c, req, reply) => {
  const digest = c.t.rest;
  assertValidDigest(digest);
  if (c.repo.kind !== 'hosted') {
    // Proxy and group repositories: cached, or streaming from the upstream while it is cached (members.ts).
    return sendProxyResult(req, reply, c.s, await readBlob(c, req, digest), {
      contentType: 'application/octet-stream',
      headers: { 'docker-content-digest': digest },
      notFound: () => new OciError('BLOB_UNKNOWN', `blob ${digest} is unknown to ${c.t.fullName}`, { digest }),
    });
  }
  const a = await findBlob(c.s, c.repo, c.t.image, digest);
  if (!a) throw new OciError('BLOB_UNKNOWN', `blob ${digest} is unknown to ${c.t.fullName}`, { digest });
  return sendBlob(req, reply, c.s.blobs, {
    digest,
    size: a.size,
    contentType: 'application/octet-stream',
    modifiedAt: a.updatedAt,
    headers: { 'docker-content-digest': digest },
  });
};

export const deleteBlob: OciHandler = async (c, req, reply) => {
  if (!c.opts.allowDelete) throw new OciError('UNSUPPORTED', `deletes are disabled in repository ${c.repo.name}`, undefined, 405);
  // The token (if any) was checked on the name addressed; the target may be a group's member: its roles decide.
  await c.s.auth.require(byRoles(req.principal), 'delete', c.repo);
  const digest = c.t.rest;
  assertValidDigest(digest);
  if (!(await unlinkBlob(c.s, c.repo, c.t.image, digest, c.actor))) {
    throw new OciError('BLOB_UNKNOWN', `blob ${digest} is unknown to ${c.t.fullName}`, { digest });
  }
  return reply.code(202).header('content-length', '0').send();
};
