/**
 * Manifest endpoints: GET/HEAD (end-3), PUT (end-7), DELETE by digest or tag (end-9).
 *
 * GET serves the exact stored bytes with the stored type (see negotiate.ts for why Accept never changes that),
 * without parsing them. PUT reads the body with a cap, validates it strictly (manifest.ts), checks that every
 * blob and child manifest it references is in the image (one MANIFEST_BLOB_UNKNOWN per missing item), applies
 * the repository's policies, then stores bytes, tag and referrers entry in one transaction.
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { getTag } from '../../meta/tags.ts';
import { contentLength, type OciContext, type OciHandler } from './context.ts';
import { OciError } from './errors.ts';
import { OciErrors } from './failure.ts';
import { HEADERS, manifestLocation } from './http.ts';
import {
  EMPTY_JSON_DIGEST,
  assertManifestDigest,
  digestOf,
  negotiate,
  parseManifest,
  referrerDescriptor,
  requiredBlobs,
  requiredManifests,
} from './manifest.ts';
import { parseReference } from './names.ts';
import { readManifest } from './members.ts';
import { STALE_WARNING } from '../../repos/proxy/index.ts';
import { deleteManifest, getManifest, linkBlob, linkedBlob, manifestBytes, putManifest, removeTag, resolveManifest } from './store.ts';
import { byRoles } from '../../repos/content.ts';

function unknownManifest(c: OciContext): OciError {
  return new OciError('MANIFEST_UNKNOWN', `manifest ${c.t.rest} is unknown to ${c.t.fullName}`, { name: c.t.fullName, reference: c.t.rest });
}

function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.trim() === '*' || header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

export const getManifestHandler: OciHandler = async (c, req, reply) => {
  const ref = parseReference(c.t.rest);
  if (!ref) throw unknownManifest(c);
  // Hosted: one lookup. Proxy and group repositories ask their upstream / members (members.ts).
  const m = c.repo.kind === 'hosted' ? await resolveManifest(c.s, c.repo, c.t.image, ref) : await readManifest(c, req, ref);
  if (!m) throw unknownManifest(c);
  if ('stale' in m && m.stale) reply.header('warning', STALE_WARNING);
  if (!negotiate(req.headers.accept, m.mediaType).acceptable) {
    req.log.debug({ accept: req.headers.accept, mediaType: m.mediaType }, 'serving a manifest type the client did not list');
  }
  const etag = `"${m.digest}"`;
  reply.header(HEADERS.CONTENT_DIGEST, m.digest).header('content-type', m.mediaType).header('etag', etag);
  if (etagMatches(req.headers['if-none-match'], etag)) return reply.code(304).send();
  if (req.method === 'HEAD') return reply.header('content-length', String(m.size)).send();
  return reply.send(await manifestBytes(c.s, m.digest));
};

/**
 * Reads a request body of at most `max` bytes into memory; null when it is longer (reading stops there and the
 * socket is left alone, so the 413 can still be answered).
 */
function readCapped(raw: IncomingMessage, max: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const done = () => {
      raw.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      n += chunk.length;
      if (n > max) {
        done();
        raw.pause();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      resolve(Buffer.concat(chunks, n));
    };
    const onError = (e: Error) => {
      done();
      reject(e);
    };
    const onClose = () => {
      if (raw.complete) return;
      done();
      reject(new OciError('MANIFEST_INVALID', 'manifest invalid: the request body was cut short'));
    };
    raw.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

function tooLarge(max: number, size?: number): OciError {
  return new OciError('MANIFEST_INVALID', `manifest invalid: larger than ${max} bytes`, size === undefined ? { limit: max } : { size, limit: max }, 413);
}

function immutable(c: OciContext, tag: string, current: string): OciError {
  // Docker Hub answers DENIED/403 for its immutable tags (Harbor: DENIED with 412); clients print the message.
  return new OciError(
    'DENIED',
    `tag ${tag} of ${c.t.fullName} is immutable (repository ${c.repo.name} has immutableTags): it stays on ${current}; push a new tag instead`,
    { tag, digest: current },
  );
}

export const putManifestHandler: OciHandler = async (c, req: FastifyRequest, reply) => {
  const { s, repo, t } = c;
  const ref = parseReference(t.rest);
  if (!ref) {
    throw new OciError('MANIFEST_INVALID', 'manifest invalid: the reference is neither a tag nor a sha256/sha512 digest', { reference: t.rest });
  }
  const max = c.opts.maxManifestBytes;
  const declared = contentLength(req);
  if (declared !== undefined && declared > max) throw tooLarge(max, declared);
  const bytes = await readCapped(req.raw, max);
  if (bytes === null) throw tooLarge(max);
  const m = parseManifest(bytes, req.headers['content-type'], { maxBytes: max });
  let digest: string;
  if (ref.kind === 'digest') {
    assertManifestDigest(bytes, ref.digest);
    digest = ref.digest;
  } else {
    digest = digestOf(bytes);
  }

  // Everything the manifest references must be in this image. Checked before anything is stored, outside the
  // transaction (a blob DELETE racing this push can leave a dangling reference, as in Distribution; GC treats
  // what manifests reference as live anyway).
  const db = s.meta.db;
  const missing: OciError[] = [];
  const link: { digest: string; size: number }[] = [];
  for (const d of requiredBlobs(m)) {
    const a = await linkedBlob(db, repo, t.image, d.digest);
    if (a) {
      if (a.size !== d.size) {
        missing.push(new OciError('MANIFEST_INVALID', `manifest invalid: descriptor of ${d.digest} says ${d.size} bytes, the blob has ${a.size}`, { digest: d.digest, size: d.size, actual: a.size }));
      }
    } else if (d.digest === EMPTY_JSON_DIGEST && d.size === 2) {
      link.push({ digest: d.digest, size: 2 }); // the empty descriptor's `{}`: created on the fly
    } else {
      missing.push(new OciError('MANIFEST_BLOB_UNKNOWN', `blob ${d.digest} is unknown to ${t.fullName}`, { digest: d.digest }));
    }
  }
  for (const d of requiredManifests(m)) {
    if (!(await getManifest(db, repo, t.image, d.digest))) {
      missing.push(new OciError('MANIFEST_BLOB_UNKNOWN', `manifest ${d.digest} is unknown to ${t.fullName}`, { digest: d.digest }));
    }
  }
  if (missing.length > 0) throw new OciErrors(missing);

  const tag = ref.kind === 'tag' ? ref.tag : undefined;
  const checkTag = async (q: typeof db) => {
    if (tag === undefined || !c.opts.immutableTags) return;
    const cur = await getTag(q, repo.id, t.image, tag);
    if (cur && cur.target !== digest) throw immutable(c, tag, cur.target);
  };
  await checkTag(db); // fail before storing anything; checked again inside the transaction
  for (const b of link) {
    if (!(await s.blobs.stat(b.digest))) await s.blobs.put(Readable.from([Buffer.from('{}')]), { expectedDigest: b.digest });
  }
  await putManifest(
    s,
    repo,
    t.image,
    {
      digest,
      bytes,
      mediaType: m.mediaType,
      tag,
      referrer: m.subject ? { subject: m.subject.digest, descriptor: referrerDescriptor(m, digest, bytes.length) } : undefined,
      prepare: async (tx) => {
        await checkTag(tx);
        for (const b of link) await linkBlob(tx, repo, t.image, b, c.actor);
      },
    },
    c.actor,
  );
  reply.code(201).header('location', manifestLocation(t.fullName, digest)).header(HEADERS.CONTENT_DIGEST, digest);
  if (m.subject) reply.header(HEADERS.OCI_SUBJECT, m.subject.digest);
  return reply.send();
};

export const deleteManifestHandler: OciHandler = async (c, req, reply) => {
  const { s, repo, t } = c;
  if (!c.opts.allowDelete) throw new OciError('UNSUPPORTED', `deletes are disabled in repository ${repo.name}`, undefined, 405);
  // The token (if any) was checked on the name addressed; the target may be a group's member: its roles decide.
  await s.auth.require(byRoles(req.principal), 'delete', repo);
  const ref = parseReference(t.rest);
  if (!ref) throw unknownManifest(c);
  if (ref.kind === 'tag') {
    if (c.opts.immutableTags) {
      const cur = await getTag(s.meta.db, repo.id, t.image, ref.tag);
      if (cur) throw immutable(c, ref.tag, cur.target);
    }
    if (!(await removeTag(s, repo, t.image, ref.tag, c.actor))) throw unknownManifest(c);
  } else {
    const ok = await deleteManifest(s, repo, t.image, ref.digest, c.actor, (tags) => {
      if (c.opts.immutableTags && tags.length > 0) throw immutable(c, tags[0], ref.digest);
    });
    if (!ok) throw unknownManifest(c);
  }
  return reply.code(202).send();
};
