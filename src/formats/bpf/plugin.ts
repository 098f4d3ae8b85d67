/**
 * An eBPF-artifact-registry compatible API over generic repositories, at `/bpf/<repo>/`. Artifacts are generic
 * assets `bpf/<name>/<version>/<sha256 hex>` carrying the typed metadata of docs/formats/generic.md plus the
 * registry's own fields; their id is the sha256 hex of the object. Host associations are tags `host:<host_id>`.
 *   GET    /bpf/<repo>/healthz
 *   POST   /bpf/<repo>/artifacts                    JSON with base64 `data` → 201 {id,…} (200 when already stored)
 *   PUT    /bpf/<repo>/artifacts/raw?name&version…  streamed application/octet-stream body, same answers
 *   GET    /bpf/<repo>/artifacts?name&type&architecture&kernel_version&tag&limit&offset   newest first
 *   GET    /bpf/<repo>/artifacts/{id}               GET /bpf/<repo>/artifacts/{id}/binary
 *   DELETE /bpf/<repo>/artifacts/{id}
 *   PUT    /bpf/<repo>/artifacts/{id}/hosts/{host}  DELETE the same; GET /bpf/<repo>/artifacts/for-host/{host}
 * Errors are `{"error": message}`.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FormatPlugin } from '../types.ts';
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import type { Principal } from '../../auth/types.ts';
import { FORMAT_CONTRACT_VERSION } from '../types.ts';
import { GranaryError } from '../../server/errors.ts';
import { normalizeError } from '../../server/normalize.ts';
import { sendBlob } from '../../server/send-blob.ts';
import { listAssets, putAsset, type Asset } from '../../meta/assets.ts';
import { withTx } from '../../meta/db.ts';
import { deleteTag, listTags, setTag } from '../../meta/tags.ts';
import { assetsUnder, readOrder, removeAsset, storeAsset, writeTarget } from '../../repos/content.ts';
import { actorOf } from '../../auth/types.ts';
import { INSPECT_MAX_BYTES, artifactOptions, enrichArtifact } from '../../artifacts/upload.ts';
import { SIGNATURE_HEADER } from '../../artifacts/metadata.ts';
import { inspect, isIntrospectError } from '../../introspect/index.ts';
import { DEFAULT_LIMIT, HOST_ID, ID, MAX_LIMIT, PATH_PREFIX, SEGMENT, artifactOf, artifactPath, hostScope, searchArtifacts } from './model.ts';

/** The JSON upload's cap on the decoded object; a repository's `maxUploadBytes` overrides it. */
export const DEFAULT_BPF_UPLOAD_BYTES = 20 * 1024 * 1024;
/** Room for the JSON fields around the base64 `data`. */
const JSON_SLACK = 64 * 1024;

const RepoParam = Type.Object({ repo: Type.String() });
const IdParams = Type.Object({ repo: Type.String(), id: Type.String() });
const HostParams = Type.Object({ repo: Type.String(), id: Type.String(), host_id: Type.String() });
const Str = (max: number) => Type.String({ minLength: 1, maxLength: max });
const Fields = {
  name: Type.String({ pattern: SEGMENT.source }),
  version: Type.String({ pattern: SEGMENT.source }),
  description: Type.Optional(Type.String({ maxLength: 4096 })),
  type: Type.Optional(Str(128)),
  architecture: Type.Optional(Str(64)),
  kernel_version: Type.Optional(Str(128)),
};
const UploadBody = Type.Object(
  {
    ...Fields,
    metadata: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 1024 }), { maxProperties: 64 })),
    tags: Type.Optional(Type.Array(Str(128), { maxItems: 64 })),
    signature: Type.Optional(Str(1024)),
    data: Type.String(),
  },
  { additionalProperties: false },
);
const RawQuery = Type.Object({ ...Fields, tags: Type.Optional(Type.String({ maxLength: 8192 })) }, { additionalProperties: false });
const SearchQuery = Type.Object(
  {
    name: Type.Optional(Type.String()),
    type: Type.Optional(Type.String()),
    architecture: Type.Optional(Type.String()),
    kernel_version: Type.Optional(Type.String()),
    tag: Type.Optional(Type.String()),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIMIT })),
    offset: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);

interface Given {
  name: string;
  version: string;
  description?: string;
  type?: string;
  architecture?: string;
  kernel_version?: string;
  tags?: string[];
  metadata?: Record<string, string>;
}

/** The uploader's fields as asset metadata; they win over what introspection finds (`type` is kept as `bpf_type`). */
function givenMetadata(g: Given): Record<string, unknown> {
  const m: Record<string, unknown> = { name: g.name, version: g.version, tags: [...new Set(g.tags ?? [])], labels: g.metadata ?? {} };
  if (g.description !== undefined) m.description = g.description;
  if (g.type !== undefined) m.bpf_type = g.type;
  if (g.architecture !== undefined) m.architecture = g.architecture;
  if (g.kernel_version !== undefined) m.kernel_version = g.kernel_version;
  return m;
}

async function readBlob(s: Services, digest: string, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await s.blobs.open(digest)) chunks.push(c as Buffer);
  return Buffer.concat(chunks, size);
}

/**
 * The enrich step: the stored object must be an eBPF ELF or a bundle of them (else 400 with the introspection
 * reason), then the repository's signature policy; returns the metadata to record.
 */
async function enrichBpf(s: Services, repo: RepositoryRecord, blob: { digest: string; size: number; bytes?: Buffer }, g: Given, signature: string | null): Promise<Record<string, unknown>> {
  if (blob.size > INSPECT_MAX_BYTES) throw new GranaryError('TOO_LARGE', `eBPF objects larger than ${INSPECT_MAX_BYTES} bytes cannot be inspected`);
  const bytes = blob.bytes ?? (await readBlob(s, blob.digest, blob.size));
  try {
    inspect(bytes, { require: 'ebpf' });
  } catch (e) {
    if (!isIntrospectError(e)) throw e;
    throw new GranaryError('BAD_REQUEST', `not an eBPF object: ${e.message}`, { cause: e });
  }
  const { metadata } = await enrichArtifact(s, repo, { digest: blob.digest, size: blob.size, bytes }, { signature });
  return { ...metadata, ...givenMetadata(g) };
}

/** Every bpf artifact visible through `repo` (a group: its readable members, first one wins per digest). */
function bpfAssets(s: Services, repo: RepositoryRecord, p: Principal): Promise<Asset[]> {
  return assetsUnder(s, repo, p, PATH_PREFIX);
}

async function assetIn(s: Services, repo: RepositoryRecord, id: string): Promise<Asset | null> {
  return (await listAssets(s.meta.db, { repoIds: [repo.id], prefix: PATH_PREFIX, digest: `sha256:${id}`, limit: 1 }))[0] ?? null;
}

const notFound = () => new GranaryError('NOT_FOUND', 'artifact not found');

async function findArtifact(s: Services, repo: RepositoryRecord, p: Principal, id: string): Promise<Asset> {
  if (!ID.test(id)) throw notFound();
  for (const r of await readOrder(s, repo, p)) {
    const a = await assetIn(s, r, id);
    if (a) return a;
  }
  throw notFound();
}

function checkHost(host: string): void {
  if (!HOST_ID.test(host)) throw new GranaryError('BAD_REQUEST', `host id must match ${HOST_ID.source}`);
}

const json = (reply: FastifyReply, value: unknown, code = 200) => reply.code(code).type('application/json').send(JSON.stringify(value));

async function jsonCap(s: Services, req: FastifyRequest): Promise<number> {
  const target = await writeTarget(s, req.repository!, req.principal);
  return Math.min(artifactOptions(target).maxUploadBytes ?? DEFAULT_BPF_UPLOAD_BYTES, s.config.limits.uploadBytes);
}

async function routes(app: FastifyInstance, s: Services): Promise<void> {
  // JSON uploads carry the object base64-encoded: the scope's parser admits the largest one the server takes;
  // each repository's own cap is checked on Content-Length (preParsing) and on the decoded bytes.
  const bodyLimit = Math.ceil((s.config.limits.uploadBytes * 4) / 3) + JSON_SLACK;
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit }, app.getDefaultJsonParser('error', 'error'));

  app.setErrorHandler((error, req, reply) => {
    const err = normalizeError(error);
    if (err.status >= 500) req.log.error({ err: error }, 'bpf request failed');
    if (err.status === 401) reply.header('www-authenticate', 'Bearer realm="Granary", Basic realm="Granary"');
    return reply.headers(err.headers).code(err.status).type('application/json').send(JSON.stringify({ error: err.message }));
  });

  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const cfg = (action: 'read' | 'write' | 'delete') => ({ action, repoParam: 'repo', format: 'generic' });

  r.get('/:repo/healthz', { schema: { params: RepoParam }, config: cfg('read') }, async (_req, reply) => json(reply, { status: 'ok' }));

  r.post(
    '/:repo/artifacts',
    {
      schema: { params: RepoParam, body: UploadBody },
      config: cfg('write'),
      preParsing: async (req, _reply, payload) => {
        const max = await jsonCap(s, req);
        if (Number(req.headers['content-length'] ?? 0) > Math.ceil((max * 4) / 3) + JSON_SLACK) throw new GranaryError('TOO_LARGE', `the object is larger than ${max} bytes`);
        return payload;
      },
    },
    async (req, reply) => {
      const target = await writeTarget(s, req.repository!, req.principal);
      const max = await jsonCap(s, req);
      const b64 = req.body.data.replace(/\s+/g, '');
      if (!b64.length || b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new GranaryError('BAD_REQUEST', 'data must be the object in base64');
      const file = Buffer.from(b64, 'base64');
      if (file.length > max) throw new GranaryError('TOO_LARGE', `the object is larger than ${max} bytes`);
      const id = createHash('sha256').update(file).digest('hex');
      const existing = await assetIn(s, target, id);
      if (existing) return json(reply, artifactOf(existing));
      const { asset } = await storeAsset(
        s,
        target,
        {
          path: artifactPath(req.body.name, req.body.version, id),
          data: Readable.from([file]),
          mediaType: 'application/octet-stream',
          expectedDigest: `sha256:${id}`,
          expectedSize: file.length,
          maxBytes: max,
          enrich: (blob) => enrichBpf(s, target, { ...blob, bytes: file }, req.body, req.body.signature ?? null),
        },
        actorOf(req.principal),
      );
      return json(reply, artifactOf(asset), 201);
    },
  );

  r.put('/:repo/artifacts/raw', { schema: { params: RepoParam, querystring: RawQuery }, config: cfg('write') }, async (req, reply) => {
    if (req.body !== undefined && req.body !== null) throw new GranaryError('BAD_REQUEST', 'send the object as application/octet-stream (or use POST /artifacts for JSON)');
    const target = await writeTarget(s, req.repository!, req.principal);
    const sigHeader = req.headers[SIGNATURE_HEADER];
    const signature = (Array.isArray(sigHeader) ? sigHeader[0] : sigHeader) ?? null;
    const given: Given = { ...req.query, tags: req.query.tags?.split(',').map((t) => t.trim()).filter(Boolean) };
    const len = req.headers['content-length'];
    const ac = new AbortController();
    req.raw.once('close', () => {
      if (!req.raw.complete) ac.abort();
    });
    // The path names the digest, known only once the bytes are in: stream into the blob store, then enrich and bind.
    const blob = await s.blobs.put(req.raw, {
      expectedSize: len === undefined ? undefined : Number(len),
      maxBytes: Math.min(artifactOptions(target).maxUploadBytes ?? Infinity, s.config.limits.uploadBytes),
      signal: ac.signal,
    });
    const id = blob.digest.replace(/^sha256:/, '');
    const existing = await assetIn(s, target, id);
    if (existing) return json(reply, artifactOf(existing));
    const metadata = await enrichBpf(s, target, blob, given, signature);
    const { asset } = await withTx(s.meta.db, (tx) =>
      putAsset(
        tx,
        { repoId: target.id, repo: target.name, path: artifactPath(given.name, given.version, id), digest: blob.digest, size: blob.size, mediaType: 'application/octet-stream', metadata },
        actorOf(req.principal),
      ),
    );
    return json(reply, artifactOf(asset), 201);
  });

  r.get('/:repo/artifacts', { schema: { params: RepoParam, querystring: SearchQuery }, config: cfg('read') }, async (req, reply) => {
    const { limit = DEFAULT_LIMIT, offset = 0, ...q } = req.query;
    const all = searchArtifacts(await bpfAssets(s, req.repository!, req.principal), q);
    return json(reply, { artifacts: all.slice(offset, offset + limit), total: all.length, limit, offset });
  });

  r.get('/:repo/artifacts/for-host/:host_id', { schema: { params: Type.Object({ repo: Type.String(), host_id: Type.String() }) }, config: cfg('read') }, async (req, reply) => {
    checkHost(req.params.host_id);
    const out = [];
    const seen = new Set<string>();
    for (const repo of await readOrder(s, req.repository!, req.principal)) {
      for (const t of await listTags(s.meta.db, repo.id, hostScope(req.params.host_id))) {
        if (seen.has(t.target)) continue;
        const a = await assetIn(s, repo, t.target);
        if (a) (seen.add(t.target), out.push(artifactOf(a)));
      }
    }
    return json(reply, { host_id: req.params.host_id, artifacts: out });
  });

  r.get('/:repo/artifacts/:id', { schema: { params: IdParams }, config: cfg('read') }, async (req, reply) =>
    json(reply, artifactOf(await findArtifact(s, req.repository!, req.principal, req.params.id))),
  );

  r.get('/:repo/artifacts/:id/binary', { schema: { params: IdParams }, config: cfg('read') }, async (req, reply) => {
    const a = await findArtifact(s, req.repository!, req.principal, req.params.id);
    return sendBlob(req, reply, s.blobs, { digest: a.digest, size: a.size, contentType: 'application/octet-stream', modifiedAt: a.updatedAt });
  });

  r.delete('/:repo/artifacts/:id', { schema: { params: IdParams }, config: cfg('delete') }, async (req, reply) => {
    const repo = req.repository!;
    const id = req.params.id;
    if (!ID.test(id)) throw notFound();
    const assets = await listAssets(s.meta.db, { repoIds: [repo.id], prefix: PATH_PREFIX, digest: `sha256:${id}`, limit: 1000 });
    if (!assets.length) throw notFound();
    for (const a of assets) await removeAsset(s, repo, a.path, actorOf(req.principal));
    // Its host associations go with it.
    const tags = await s.meta.db.selectFrom('tags').select(['scope', 'name']).where('repo_id', '=', repo.id).where('target', '=', id).execute();
    await withTx(s.meta.db, async (tx) => {
      for (const t of tags) if (t.scope.startsWith('host:')) await deleteTag(tx, repo, t.scope, t.name, actorOf(req.principal));
    });
    return reply.code(204).send();
  });

  r.put('/:repo/artifacts/:id/hosts/:host_id', { schema: { params: HostParams }, config: cfg('write') }, async (req, reply) => {
    checkHost(req.params.host_id);
    const target = await writeTarget(s, req.repository!, req.principal);
    if (!ID.test(req.params.id) || !(await assetIn(s, target, req.params.id))) throw notFound();
    const prev = await withTx(s.meta.db, (tx) => setTag(tx, target, hostScope(req.params.host_id), req.params.id, req.params.id, actorOf(req.principal)));
    return json(reply, { id: req.params.id, host_id: req.params.host_id }, prev === null ? 201 : 200);
  });

  r.delete('/:repo/artifacts/:id/hosts/:host_id', { schema: { params: HostParams }, config: cfg('write') }, async (req, reply) => {
    checkHost(req.params.host_id);
    const target = await writeTarget(s, req.repository!, req.principal);
    const removed = await withTx(s.meta.db, (tx) => deleteTag(tx, target, hostScope(req.params.host_id), req.params.id, actorOf(req.principal)));
    if (!removed) throw new GranaryError('NOT_FOUND', 'artifact is not associated with this host');
    return reply.code(204).send();
  });
}

export const bpfFormat: FormatPlugin = {
  name: 'bpf',
  contract: FORMAT_CONTRACT_VERSION,
  kinds: [],
  repositoryFormat: 'generic',
  prefix: '/bpf',
  register: routes,
};
