/**
 * Serves stored bytes over HTTP the way every format needs it: streamed, with a strong ETag (the digest),
 * conditional requests (If-None-Match, If-Range) and single byte ranges (206 / 416). HEAD sends headers only.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { BlobFile, BlobStore } from '../blobs/types.ts';
import { blobDownloadUrl } from '../blobs/index.ts';
import { GranaryError } from './errors.ts';
import { copyFileRange, sendRaw } from './send-file.ts';

export interface BlobToSend {
  digest: string;
  size: number;
  contentType?: string | null;
  /** Last change of the asset, for Last-Modified. */
  modifiedAt?: string;
  /** Extra headers (e.g. Docker-Content-Digest). */
  headers?: Record<string, string>;
}

/** Parses `Range: bytes=…` for a body of `size` bytes. null = no (usable) range header → full body. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | 'unsatisfiable' {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null; // malformed or multi-range: ignore, as RFC 9110 allows
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

export async function sendBlob(req: FastifyRequest, reply: FastifyReply, blobs: BlobStore, b: BlobToSend): Promise<FastifyReply> {
  const etag = `"${b.digest}"`;
  reply.header('etag', etag);
  reply.header('accept-ranges', 'bytes');
  if (b.modifiedAt) reply.header('last-modified', new Date(b.modifiedAt).toUTCString());
  reply.headers(b.headers ?? {});
  reply.type(b.contentType || 'application/octet-stream');
  // Content never changes under a digest: clients may cache it for as long as they like.
  if (etagMatches(req.headers['if-none-match'], etag)) return reply.code(304).send();

  let range = parseRange(req.headers.range, b.size);
  const ifRange = req.headers['if-range'];
  if (range && ifRange && ifRange !== etag) range = null;
  if (range === 'unsatisfiable') {
    reply.header('content-range', `bytes */${b.size}`);
    throw new GranaryError('RANGE_NOT_SATISFIABLE', `range ${req.headers.range} not satisfiable for ${b.size} bytes`, {
      headers: { 'content-range': `bytes */${b.size}` },
    });
  }
  const isHead = req.method === 'HEAD';
  if (!isHead) {
    // Object storage with `redirect`: the client fetches the bytes from the bucket (it repeats its Range there).
    const location = await blobDownloadUrl(blobs, b.digest, {
      ...(b.contentType ? { contentType: b.contentType } : {}),
      ...(b.headers?.['content-disposition'] ? { contentDisposition: b.headers['content-disposition'] } : {}),
    });
    if (location !== null) {
      for (const h of ['etag', 'accept-ranges', 'last-modified', 'content-type']) reply.removeHeader(h);
      return reply.code(307).header('location', location).header('content-length', '0').send();
    }
  }
  if (range) {
    reply.code(206);
    reply.header('content-range', `bytes ${range.start}-${range.end}/${b.size}`);
    reply.header('content-length', String(range.end - range.start + 1));
    if (isHead || range.end < range.start) return reply.send();
  } else {
    reply.header('content-length', String(b.size));
    if (isHead) return reply.send();
  }
  const start = range ? range.start : 0;
  const end = range ? range.end + 1 : b.size;
  if (blobs.openFile !== undefined) return sendFile(req, reply, await blobs.openFile(b.digest), b, start, end);
  return reply.send(await blobs.open(b.digest, range ? { range } : {}));
}

/** Local files go out through `copyFileRange` (reused buffers; see send-file.ts). */
async function sendFile(req: FastifyRequest, reply: FastifyReply, file: BlobFile, b: BlobToSend, start: number, end: number): Promise<FastifyReply> {
  if (file.size !== b.size) {
    await file.close();
    throw new GranaryError('INTERNAL', `stored blob ${b.digest} has ${file.size} bytes, its record says ${b.size}`);
  }
  try {
    return await sendRaw(req, reply, { digest: b.digest }, (dest) => copyFileRange(file, start, end, dest));
  } finally {
    await file.close();
  }
}
