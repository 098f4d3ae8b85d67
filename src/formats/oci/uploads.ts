/**
 * Blob uploads (distribution-spec "Pushing blobs"): POST starts a session, uploads monolithically with
 * `?digest=` (end-4b) or mounts from another image (end-11); PATCH appends a chunk (end-5); PUT closes with the
 * digest and an optional last chunk (end-6); GET reports progress; DELETE cancels.
 *
 * A session is a row of the `uploads` table (repository, image, expiry pushed out on every PATCH) plus the
 * blob store's upload area under the same id, so it survives a restart; the janitor removes expired ones.
 * Bytes are streamed, never buffered; a blob becomes visible in the image only when the closing PUT verified
 * its digest and linked it. `limits.uploadBytes` caps the whole session.
 */
import { randomUUID } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DigestMismatchError, TooLargeError, UploadOffsetError } from '../../blobs/errors.ts';
import { isUploadId } from '../../blobs/index.ts';
import { withTx } from '../../meta/db.ts';
import { createUpload, deleteUpload, getUpload, touchUpload } from '../../meta/uploads.ts';
import { contentLength, hasBody, queryParam, type OciContext, type OciHandler } from './context.ts';
import { OciError } from './errors.ts';
import { OciErrors } from './failure.ts';
import { HEADERS, blobLocation, checkChunk, formatUploadRange, parseContentRange, uploadLocation } from './http.ts';
import { assertValidDigest, isValidDigest, isValidName } from './names.ts';
import { linkBlob, linkedBlob } from './store.ts';
import { OCI_FORMAT, resolveName } from './target.ts';

const ttlMs = (c: OciContext): number => c.s.config.oci.uploadExpiryMinutes * 60_000;

function unknownUpload(): OciError {
  return new OciError('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry (cancelled, finished, expired or never started)');
}

function sessionHeaders(reply: FastifyReply, c: OciContext, id: string, size: number): FastifyReply {
  return reply
    .header('location', uploadLocation(c.t.fullName, id))
    .header('range', formatUploadRange(size))
    .header(HEADERS.UPLOAD_UUID, id);
}

function created(reply: FastifyReply, c: OciContext, digest: string): FastifyReply {
  return reply.code(201).header('location', blobLocation(c.t.fullName, digest)).header(HEADERS.CONTENT_DIGEST, digest).send();
}

/**
 * The request body as a stream. With a Content-Length, Node's parser already delivers exactly that many bytes
 * (or an error), so the raw request is used as is. Otherwise (chunked) the bytes are counted through a guard
 * that fails past `max` or when `exact` is not met; its failure does not destroy the socket, so the error can
 * still be answered.
 */
function bodyOf(req: FastifyRequest, o: { max: number; exact?: number }): Readable {
  if (contentLength(req) !== undefined) return req.raw;
  let n = 0;
  const guard = new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      if (o.exact !== undefined && n > o.exact) return cb(new OciError('SIZE_INVALID', 'more bytes arrived than Content-Range announced'));
      if (n > o.max) return cb(new TooLargeError(o.max));
      cb(null, chunk);
    },
    flush(cb) {
      if (o.exact !== undefined && n !== o.exact) return cb(new OciError('SIZE_INVALID', `Content-Range announced ${o.exact} bytes, ${n} arrived`));
      cb();
    },
  });
  // The body starts flowing into the guard before the blob store attaches to it: an early failure must not be an
  // unhandled 'error' (the consumer still sees it through `errored`).
  guard.on('error', () => {});
  const raw = req.raw;
  raw.once('error', (e) => guard.destroy(e));
  raw.once('close', () => {
    if (!raw.complete) guard.destroy(new Error('request aborted'));
  });
  // Once the guard is done with (finished, failed, or dropped unread), whatever is left of the body is drained,
  // so the connection can carry the answer and the next request.
  guard.once('close', () => {
    raw.unpipe(guard);
    if (!raw.complete) raw.resume();
  });
  raw.pipe(guard);
  return guard;
}

/** Streams the body into the session; a guard the store never read is dropped (and the body drained). */
async function appendBody(c: OciContext, req: FastifyRequest, id: string, body: Readable, opts: { offset: number; maxBytes: number }): Promise<number> {
  try {
    return await c.s.blobs.uploads.append(id, body, opts);
  } catch (e) {
    if (body !== req.raw) body.destroy();
    throw e;
  }
}

/** The session `id` of this repository and image, or BLOB_UPLOAD_UNKNOWN. Expired sessions are removed here. */
async function openSession(c: OciContext, id: string): Promise<void> {
  if (!isUploadId(id)) throw unknownUpload();
  const u = await getUpload(c.s.meta.db, id);
  if (!u || u.repoId !== c.repo.id || u.scope !== c.t.image) throw unknownUpload();
  if (u.expiresAt < new Date().toISOString()) {
    await c.s.blobs.uploads.abort(id);
    await deleteUpload(c.s.meta.db, id);
    throw unknownUpload();
  }
}

async function sessionSize(c: OciContext, id: string): Promise<number> {
  const size = await c.s.blobs.uploads.size(id);
  if (size === null) {
    await deleteUpload(c.s.meta.db, id);
    throw unknownUpload();
  }
  return size;
}

/**
 * Appends the request body (a chunk) at the session's end, after the in-order checks: a Content-Range must
 * start at the current size (else 416 with Location and Range, so the client can resume) and agree with
 * Content-Length. Returns the new size.
 */
async function appendChunk(c: OciContext, req: FastifyRequest, id: string, size: number): Promise<number> {
  const len = contentLength(req);
  const header = req.headers['content-range'];
  const resumeAt = (at: number) => ({ location: uploadLocation(c.t.fullName, id), range: formatUploadRange(at), [HEADERS.UPLOAD_UUID]: id });
  let exact: number | undefined;
  try {
    const range = header === undefined ? undefined : parseContentRange(header);
    checkChunk(range, size, len);
    if (range) exact = range.end - range.start + 1;
  } catch (e) {
    if (e instanceof OciError && e.code === 'RANGE_INVALID') throw new OciErrors([e], resumeAt(size));
    throw e;
  }
  const remaining = Math.max(0, c.s.config.limits.uploadBytes - size);
  const announced = exact ?? len;
  if (announced !== undefined && announced > remaining) {
    throw new OciError('SIZE_INVALID', `the upload would exceed the limit of ${c.s.config.limits.uploadBytes} bytes`, { limit: c.s.config.limits.uploadBytes }, 413);
  }
  try {
    return await appendBody(c, req, id, bodyOf(req, { max: remaining, exact }), { offset: size, maxBytes: remaining });
  } catch (e) {
    if (e instanceof UploadOffsetError) {
      const err = new OciError('RANGE_INVALID', `chunk must start at byte ${e.expected}`, { expectedStart: e.expected, start: e.given });
      throw new OciErrors([err], resumeAt(e.expected));
    }
    throw e;
  }
}

/** POST /v2/<name>/blobs/uploads/ — mount, monolithic upload, or a new session. */
export const startUpload: OciHandler = async (c, req, reply) => {
  if (c.t.rest !== '') throw new OciError('UNSUPPORTED', 'POST goes to /blobs/uploads/, not to a session', undefined, 405);
  const mount = queryParam(req, 'mount');
  const from = queryParam(req, 'from');
  if (mount !== undefined && from !== undefined && (await tryMount(c, req, mount, from))) return created(reply, c, mount);

  const digest = queryParam(req, 'digest');
  if (digest !== undefined) {
    assertValidDigest(digest);
    const limit = c.s.config.limits.uploadBytes;
    const len = contentLength(req);
    if (len !== undefined && len > limit) {
      throw new OciError('SIZE_INVALID', `the blob exceeds the limit of ${limit} bytes`, { limit }, 413);
    }
    const body = bodyOf(req, { max: limit });
    let blob;
    try {
      blob = await c.s.blobs.put(body, { expectedDigest: digest, expectedSize: len, maxBytes: limit });
    } catch (e) {
      if (body !== req.raw) body.destroy();
      throw e;
    }
    await withTx(c.s.meta.db, (tx) => linkBlob(tx, c.repo, c.t.image, blob, c.actor));
    return created(reply, c, digest);
  }

  const id = randomUUID();
  await c.s.blobs.uploads.create(id);
  await createUpload(c.s.meta.db, { id, repoId: c.repo.id, scope: c.t.image, ttlMs: ttlMs(c) });
  return sessionHeaders(reply, c, id, 0).code(202).send();
};

/**
 * Cross-repository mount: only when the caller may read the source image and the blob is linked there.
 * Anything else (bad digest or name, unknown source, no permission, a token without pull on `from`) is no
 * error: the spec says to fall back to a normal upload session (202), which the caller then starts.
 */
async function tryMount(c: OciContext, req: FastifyRequest, digest: string, from: string): Promise<boolean> {
  if (!isValidDigest(digest) || !isValidName(from)) return false;
  const src = await resolveName(c.s, from);
  const repo = src.repo === c.repo.name ? c.repo : await c.s.repos.get(src.repo);
  if (!repo || repo.format !== OCI_FORMAT || src.image === '') return false;
  // The source image itself must be readable: a registry JWT grants per image, not per Granary repository.
  if (!(await c.s.auth.can(req.principal, 'read', repo, src.image))) return false;
  const blob = await linkedBlob(c.s.meta.db, repo, src.image, digest);
  if (!blob) return false;
  await withTx(c.s.meta.db, (tx) => linkBlob(tx, c.repo, c.t.image, { digest, size: blob.size }, c.actor));
  return true;
}

/** PATCH <location> — a chunk, with or without Content-Range. */
export const patchUpload: OciHandler = async (c, req, reply) => {
  const id = c.t.rest;
  await openSession(c, id);
  const size = await appendChunk(c, req, id, await sessionSize(c, id));
  await touchUpload(c.s.meta.db, id, ttlMs(c));
  return sessionHeaders(reply, c, id, size).code(202).send();
};

/** PUT <location>?digest= — optional last chunk, verify, publish, link. */
export const finishUpload: OciHandler = async (c, req, reply) => {
  const id = c.t.rest;
  const digest = queryParam(req, 'digest');
  if (digest === undefined) throw new OciError('DIGEST_INVALID', 'the closing PUT needs ?digest=<digest of the whole blob>');
  assertValidDigest(digest);
  await openSession(c, id);
  const size = await sessionSize(c, id);
  if (hasBody(req)) await appendChunk(c, req, id, size);
  let blob;
  try {
    blob = await c.s.blobs.uploads.commit(id, digest);
  } catch (e) {
    // The blob store drops a session whose content can never match; forget it here too.
    if (e instanceof DigestMismatchError) await deleteUpload(c.s.meta.db, id);
    throw e;
  }
  await withTx(c.s.meta.db, async (tx) => {
    await linkBlob(tx, c.repo, c.t.image, blob, c.actor);
    await deleteUpload(tx, id);
  });
  return created(reply, c, digest);
};

/** GET <location> — progress: 204 with Range. Only pushers may look. */
export const uploadStatus: OciHandler = async (c, req, reply) => {
  await c.s.auth.require(req.principal, 'write', c.repo);
  const id = c.t.rest;
  await openSession(c, id);
  return sessionHeaders(reply, c, id, await sessionSize(c, id)).code(204).send();
};

/** DELETE <location> — cancel. */
export const cancelUpload: OciHandler = async (c, _req, reply) => {
  const id = c.t.rest;
  await openSession(c, id);
  await c.s.blobs.uploads.abort(id);
  await deleteUpload(c.s.meta.db, id);
  return reply.code(204).send();
};
