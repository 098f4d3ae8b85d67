/**
 * Generic repositories, the base of typed binary artifacts: any bytes at any path.
 *   PUT    /generic/<repo>/<path>   store (raw body; optional X-Checksum-Sha256 / ?digest= verified)
 *   GET    /generic/<repo>/<path>   download (ranges, ETag, conditional)
 *   HEAD   /generic/<repo>/<path>
 *   DELETE /generic/<repo>/<path>
 *   POST   /generic/<repo>/<path>   store from a multipart form: fields `signature`, `meta.<key>`, then `file`
 *   GET    /generic/<repo>/?digest=sha256:<hex>   download by digest (first readable asset holding it)
 * Typed artifacts (docs/formats/generic.md): PUT takes `X-Granary-Meta-<Key>` headers and `X-Granary-Signature`,
 * inspects what it stored (ELF/PE/Mach-O, memflow plug-ins, eBPF) and applies the repository's signature policy;
 * GET/HEAD echo scalar metadata and the signature as headers.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FormatPlugin } from '../types.ts';
import type { Services } from '../../server/services.ts';
import { FORMAT_CONTRACT_VERSION } from '../types.ts';
import { GranaryError } from '../../server/errors.ts';
import { normalizeError } from '../../server/normalize.ts';
import { sendApiError } from '../../server/app.ts';
import { sendBlob } from '../../server/send-blob.ts';
import { findAsset, removeAsset, storeAsset, writeTarget } from '../../repos/content.ts';
import { actorOf } from '../../auth/types.ts';
import { Type } from '@sinclair/typebox';
import multipart from '@fastify/multipart';
import type { Readable } from 'node:stream';
import { listAssets } from '../../meta/assets.ts';
import { readOrder } from '../../repos/content.ts';
import { isDigest } from '../../blobs/digest.ts';
import { SIGNATURE_HEADER, metadataFromHeaders, metadataHeaders } from '../../artifacts/metadata.ts';
import { artifactOptions, enrichArtifact } from '../../artifacts/upload.ts';

/** Repository options of generic repositories (also read by the memflow plug-in and the keys API). */
export const genericOptionsSchema = Type.Object(
  {
    /** Signature policy: `required` refuses unsigned uploads, `optional` verifies signatures when given, `off` ignores them. */
    signatures: Type.Optional(Type.Union([Type.Literal('required'), Type.Literal('optional'), Type.Literal('off')])),
    /** secp256k1 signatures with S > n/2: refuse (default, as k256 does) or store the low-S twin. */
    lowS: Type.Optional(Type.Union([Type.Literal('reject'), Type.Literal('normalize')])),
    /** Upload cap for this repository (never above `limits.uploadBytes`); the memflow POST defaults to 20 MiB. */
    maxUploadBytes: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

/** A path inside a repository: no empty, "." or ".." segments, no backslashes or control characters. */
export function validatePath(raw: string): string {
  const path = raw.replace(/^\/+/, '');
  if (!path || path.length > 1024) throw new GranaryError('BAD_REQUEST', 'path must be 1-1024 characters');
  if (/[\\\x00-\x1f\x7f]/.test(path)) throw new GranaryError('BAD_REQUEST', 'path contains a forbidden character');
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') throw new GranaryError('BAD_REQUEST', `path segment ${JSON.stringify(seg)} is not allowed`);
  }
  return path;
}

type Req = FastifyRequest<{ Params: { repo: string; '*': string } }>;

async function routes(app: FastifyInstance, s: Services): Promise<void> {
  app.setErrorHandler((error, req, reply) => {
    const err = normalizeError(error);
    if (err.status >= 500) req.log.error({ err: error }, 'generic request failed');
    if (err.status === 401) reply.header('www-authenticate', 'Basic realm="Granary"');
    return sendApiError(reply, err);
  });

  const cfg = (action: 'read' | 'write' | 'delete') => ({ action, repoParam: 'repo', format: 'generic' });

  /** The asset a GET names: by path, or with an empty path and `?digest=`, by content. */
  const lookup = async (req: Req) => {
    const q = req.query as Record<string, string | undefined>;
    if (req.params['*'] === '' && q.digest !== undefined) {
      if (!isDigest(q.digest)) throw new GranaryError('BAD_REQUEST', `digest ${JSON.stringify(q.digest)} is not a valid digest`);
      for (const r of await readOrder(s, req.repository!, req.principal)) {
        const [asset] = await listAssets(s.meta.db, { repoIds: [r.id], digest: q.digest, limit: 1 });
        if (asset) return asset;
      }
      throw new GranaryError('NOT_FOUND', `no asset with digest ${q.digest} in ${req.repository!.name}`);
    }
    const path = validatePath(req.params['*']);
    const found = await findAsset(s, req.repository!, path, req.principal);
    if (!found) throw new GranaryError('NOT_FOUND', `${path} not found in ${req.repository!.name}`);
    return found.asset;
  };

  const get = async (req: Req, reply: FastifyReply) => {
    const asset = await lookup(req);
    return sendBlob(req, reply, s.blobs, {
      digest: asset.digest,
      size: asset.size,
      contentType: asset.mediaType,
      modifiedAt: asset.updatedAt,
      headers: { ...metadataHeaders(asset.metadata), 'x-checksum-sha256': asset.digest.replace(/^sha256:/, '') },
    });
  };
  app.get('/:repo/*', { config: cfg('read') }, get);
  app.head('/:repo/*', { config: cfg('read') }, get);

  /** Stores `data` at the request's path: the PUT body, or the `file` part of a multipart POST. */
  const store = async (
    req: Req,
    reply: FastifyReply,
    o: { data: Readable; metadata: Record<string, string>; signature?: string; mediaType: string | null; expectedSize?: number },
  ) => {
    const path = validatePath(req.params['*']);
    const target = await writeTarget(s, req.repository!, req.principal);
    const q = req.query as Record<string, string | undefined>;
    const sha = (req.headers['x-checksum-sha256'] as string | undefined) ?? undefined;
    const expectedDigest = q.digest ?? (sha ? `sha256:${sha.toLowerCase()}` : undefined);
    const ac = new AbortController();
    req.raw.once('close', () => {
      if (!req.raw.complete) ac.abort();
    });
    const { asset, previous } = await storeAsset(
      s,
      target,
      {
        path,
        data: o.data,
        mediaType: o.mediaType,
        expectedDigest,
        expectedSize: o.expectedSize,
        signal: ac.signal,
        metadata: o.metadata,
        maxBytes: artifactOptions(target).maxUploadBytes,
        enrich: async (blob) => (await enrichArtifact(s, target, blob, { signature: o.signature })).metadata,
      },
      actorOf(req.principal),
    );
    return reply
      .code(previous ? 200 : 201)
      .header('location', `/generic/${target.name}/${path}`)
      .send({ repository: target.name, path, digest: asset.digest, size: asset.size, metadata: asset.metadata });
  };

  app.put('/:repo/*', { config: cfg('write') }, async (req: Req, reply) => {
    const len = req.headers['content-length'];
    const sigHeader = req.headers[SIGNATURE_HEADER];
    return store(req, reply, {
      data: req.raw,
      metadata: metadataFromHeaders(req.headers),
      signature: Array.isArray(sigHeader) ? sigHeader[0] : sigHeader,
      mediaType: req.headers['content-type'] ?? null,
      expectedSize: len === undefined ? undefined : Number(len),
    });
  });

  // Multipart uploads (browsers, `curl -F`): the file part is streamed like a PUT body. Fields must come
  // before the file part — those after it arrive too late to apply.
  await app.register(multipart, { limits: { fields: 100, fieldSize: 64 * 1024, files: 1, parts: 102 } });
  app.post('/:repo/*', { config: cfg('write') }, async (req: Req, reply) => {
    if (!req.isMultipart()) throw new GranaryError('BAD_REQUEST', 'POST takes multipart/form-data with a `file` part; use PUT for a raw body');
    const max = Math.min(artifactOptions(req.repository!).maxUploadBytes ?? Infinity, s.config.limits.uploadBytes);
    // One byte over the cap reaches the blob store, whose own limit then refuses the write (413, nothing kept);
    // at exactly the cap the parser would end the part quietly and a truncated file would look complete.
    const part = await req.file({ limits: { fileSize: max + 1 } });
    if (!part || part.fieldname !== 'file') throw new GranaryError('BAD_REQUEST', 'the form needs a `file` part');
    const headers: Record<string, string> = {};
    let signature: string | undefined;
    for (const [name, field] of Object.entries(part.fields)) {
      const f = Array.isArray(field) ? field[0] : field;
      if (!f || f.type !== 'field') continue;
      if (name === 'signature') signature = String(f.value);
      else if (name.startsWith('meta.')) headers[`x-granary-meta-${name.slice(5).toLowerCase()}`] = String(f.value);
    }
    const data = part.file;
    // Past the limit the parser just stops the part: fail the write so a truncated file is never stored.
    data.once('limit', () => data.destroy(new GranaryError('TOO_LARGE', `the file part is larger than ${max} bytes`)));
    return store(req, reply, { data, metadata: metadataFromHeaders(headers), signature, mediaType: part.mimetype || null });
  });

  app.delete('/:repo/*', { config: cfg('delete') }, async (req: Req, reply) => {
    const path = validatePath(req.params['*']);
    const removed = await removeAsset(s, req.repository!, path, actorOf(req.principal));
    if (!removed) throw new GranaryError('NOT_FOUND', `${path} not found in ${req.repository!.name}`);
    return reply.code(204).send();
  });
}

export const genericFormat: FormatPlugin = {
  name: 'generic',
  contract: FORMAT_CONTRACT_VERSION,
  kinds: ['hosted', 'group'],
  optionsSchema: genericOptionsSchema,
  register: routes,
};
