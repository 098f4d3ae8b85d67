/**
 * Serving a ProxyResult over HTTP: a cached asset goes through sendBlob (ranges, ETag, 304); a live stream is
 * sent as it arrives with the length and type the upstream gave (no ranges: the bytes are not here yet — a
 * client that retries with Range once the flight is over gets them from the cache). A stale answer carries
 * `Warning: 110` (RFC 7234), which clients ignore and people debugging see.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../server/services.ts';
import { sendBlob } from '../../server/send-blob.ts';
import { sendRaw } from '../../server/send-file.ts';
import { GranaryError } from '../../server/errors.ts';
import type { ProxyResult } from './read.ts';
import { noteAccess } from './access.ts';

export const STALE_WARNING = '110 granary "Response is Stale: the upstream could not be reached"';

export interface SendOptions {
  /** Content-Type to send instead of the stored or upstream one. */
  contentType?: string;
  headers?: Record<string, string>;
  /** Error to throw for not-found (default a core NOT_FOUND). */
  notFound?: () => Error;
}

export async function sendProxyResult(req: FastifyRequest, reply: FastifyReply, s: Services, r: ProxyResult, o: SendOptions = {}): Promise<FastifyReply> {
  if (r.kind === 'not-found') throw o.notFound ? o.notFound() : new GranaryError('NOT_FOUND');
  if (r.kind === 'cached') {
    if (r.stale) reply.header('warning', STALE_WARNING);
    // Retention counts from the last read (hosted assets are never swept, so only proxies note theirs).
    if (r.repo.kind === 'proxy') noteAccess(s, r.asset);
    return sendBlob(req, reply, s.blobs, {
      digest: r.asset.digest,
      size: r.asset.size,
      contentType: o.contentType ?? r.asset.mediaType,
      modifiedAt: r.asset.updatedAt,
      headers: o.headers,
    });
  }
  reply.headers(o.headers ?? {});
  reply.type(o.contentType ?? r.mediaType ?? 'application/octet-stream');
  if (r.digest) reply.header('etag', `"${r.digest}"`);
  if (r.size !== undefined) reply.header('content-length', String(r.size));
  if (req.method === 'HEAD' || !r.body) {
    r.body?.destroy();
    return reply.send();
  }
  if (r.copyTo !== undefined) {
    r.body.destroy();
    return sendRaw(req, reply, { repository: r.repo.name, digest: r.digest }, r.copyTo);
  }
  return reply.send(r.body);
}
