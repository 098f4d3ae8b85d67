/**
 * The memflow-registry API (MEMFLOW-REGISTRY-API.md c.2) over generic repositories, so memflowup and memflow's own
 * client work unchanged against `/memflow/<repo>/`. Files are generic assets `memflow/<sha256 hex>` carrying the
 * typed metadata of docs/formats/generic.md, so `/api/v1/repositories/<repo>/latest` resolves them too.
 *   GET    /memflow/<repo>/health
 *   GET    /memflow/<repo>/plugins
 *   GET    /memflow/<repo>/plugins/{name}?version&memflow_plugin_version&file_type&architecture&skip&limit
 *   GET    /memflow/<repo>/files/{digest}            GET /memflow/<repo>/files/{digest}/metadata
 *   POST   /memflow/<repo>/files                     multipart `file` + `signature` → "Added" | "AlreadyExists"
 *   DELETE /memflow/<repo>/files/{digest}
 * Errors are plain-text bodies, as memflow-registry's. Fixed on purpose: filters apply before skip, a missing
 * DELETE is 404 (not 500), digests are validated, files without plug-in exports are refused, fat Mach-O is accepted.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FormatPlugin } from '../types.ts';
import type { RouteAuth } from '../../server/auth-hook.ts';
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import type { Principal } from '../../auth/types.ts';
import { FORMAT_CONTRACT_VERSION } from '../types.ts';
import { GranaryError } from '../../server/errors.ts';
import { normalizeError } from '../../server/normalize.ts';
import { sendBlob } from '../../server/send-blob.ts';
import type { Asset } from '../../meta/assets.ts';
import { assetsUnder, findAsset, removeAsset, storeAsset, writeTarget } from '../../repos/content.ts';
import { actorOf } from '../../auth/types.ts';
import { artifactOptions, enrichArtifact } from '../../artifacts/upload.ts';
import { DIGEST, PATH_PREFIX, metadataOf, pluginList, queryVariants, variantsOf } from './model.ts';

/** memflow-registry's `DefaultBodyLimit` for uploads; a repository's `maxUploadBytes` overrides it. */
export const DEFAULT_MEMFLOW_UPLOAD_BYTES = 20 * 1024 * 1024;

const RepoParam = Type.Object({ repo: Type.Optional(Type.String()) });
const DigestParams = Type.Object({ repo: Type.Optional(Type.String()), digest: Type.String() });
const PluginQuery = Type.Object({
  version: Type.Optional(Type.String()),
  memflow_plugin_version: Type.Optional(Type.Integer()),
  file_type: Type.Optional(Type.Union([Type.Literal('pe'), Type.Literal('elf'), Type.Literal('mach')])),
  architecture: Type.Optional(Type.Union([Type.Literal('x86'), Type.Literal('x86_64'), Type.Literal('arm'), Type.Literal('arm64')])),
  skip: Type.Optional(Type.Integer({ minimum: 0 })),
  limit: Type.Optional(Type.Integer({ minimum: 0 })),
});

/** Every memflow file visible through `repo` (a group: its readable members, first one wins per digest). */
function memflowAssets(s: Services, repo: RepositoryRecord, p: Principal): Promise<Asset[]> {
  return assetsUnder(s, repo, p, PATH_PREFIX);
}

function notFound(): GranaryError {
  return new GranaryError('NOT_FOUND', 'plugin not found');
}

async function fileAsset(s: Services, req: FastifyRequest<{ Params: { digest: string } }>): Promise<Asset> {
  if (!DIGEST.test(req.params.digest)) throw notFound();
  const found = await findAsset(s, req.repository!, PATH_PREFIX + req.params.digest, req.principal);
  if (!found) throw notFound();
  return found.asset;
}

/** Reads the whole request body, refusing more than `max` bytes with 413. */
async function readBody(req: FastifyRequest, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  const tooLarge = () => new GranaryError('TOO_LARGE', `the upload is larger than ${max} bytes`);
  if (declared > max) throw tooLarge();
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req.raw) {
    n += (c as Buffer).length;
    if (n > max) throw tooLarge();
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks, n);
}

/** The multipart form of `POST /files`: exactly the fields `file` and `signature` (c.4). */
async function parseUpload(req: FastifyRequest, body: Buffer): Promise<{ file: Buffer; signature: string | null }> {
  const type = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data\b/i.test(type)) throw new GranaryError('BAD_REQUEST', 'expected a multipart/form-data body with the fields file and signature');
  let form: FormData;
  try {
    form = await new Response(new Uint8Array(body.buffer, body.byteOffset, body.length), { headers: { 'content-type': type } }).formData();
  } catch (e) {
    throw new GranaryError('BAD_REQUEST', `malformed multipart body: ${(e as Error).message}`, { cause: e });
  }
  let file: Buffer | null = null;
  let signature: string | null = null;
  for (const [name, value] of form) {
    if (name === 'file') file = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(await value.arrayBuffer());
    else if (name === 'signature') signature = typeof value === 'string' ? value : Buffer.from(await value.arrayBuffer()).toString('utf8');
    else throw new GranaryError('BAD_REQUEST', 'unexpected field in multipart form');
  }
  if (!file) throw new GranaryError('BAD_REQUEST', 'file is required');
  return { file, signature };
}

const json = (reply: FastifyReply, value: unknown) => reply.type('application/json').send(JSON.stringify(value));

/**
 * The routes, mounted per repository (`/memflow/<repo>/…`) or — for `memflow.defaultRepository` — at the
 * server root, where memflowup expects a registry (`/plugins`, `/files/…`).
 */
async function routes(app: FastifyInstance, s: Services, root?: string): Promise<void> {
  app.setErrorHandler((error, req, reply) => {
    const err = normalizeError(error);
    if (err.status >= 500) req.log.error({ err: error }, 'memflow request failed');
    if (err.status === 401) reply.header('www-authenticate', 'Bearer realm="Granary", Basic realm="Granary"');
    return reply.headers(err.headers).code(err.status).type('text/plain; charset=utf-8').send(err.message);
  });

  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const cfg = (action: 'read' | 'write' | 'delete'): RouteAuth =>
    root === undefined ? { action, repoParam: 'repo', format: 'generic' } : { action, repo: () => root, format: 'generic' };
  const base = root === undefined ? '/:repo' : '';

  r.get(`${base}/health`, { schema: { params: RepoParam }, config: cfg('read') }, async (_req, reply) => json(reply, 'Ok'));

  r.get(`${base}/plugins`, { schema: { params: RepoParam }, config: cfg('read') }, async (req, reply) =>
    json(reply, { plugins: pluginList(variantsOf(await memflowAssets(s, req.repository!, req.principal))) }),
  );

  r.get(
    `${base}/plugins/:name`,
    { schema: { params: Type.Object({ repo: Type.Optional(Type.String()), name: Type.String() }), querystring: PluginQuery }, config: cfg('read') },
    async (req, reply) => {
      const all = variantsOf(await memflowAssets(s, req.repository!, req.principal));
      return json(reply, { plugins: queryVariants(all, req.params.name, req.query), skip: req.query.skip ?? 0 });
    },
  );

  r.get(`${base}/files/:digest`, { schema: { params: DigestParams }, config: cfg('read') }, async (req, reply) => {
    const a = await fileAsset(s, req);
    return sendBlob(req, reply, s.blobs, { digest: a.digest, size: a.size, contentType: 'application/octet-stream', modifiedAt: a.updatedAt });
  });

  r.get(`${base}/files/:digest/metadata`, { schema: { params: DigestParams }, config: cfg('read') }, async (req, reply) =>
    json(reply, metadataOf(await fileAsset(s, req))),
  );

  r.post(`${base}/files`, { schema: { params: RepoParam }, config: cfg('write') }, async (req, reply) => {
    const target = await writeTarget(s, req.repository!, req.principal);
    const max = Math.min(artifactOptions(target).maxUploadBytes ?? DEFAULT_MEMFLOW_UPLOAD_BYTES, s.config.limits.uploadBytes);
    const { file, signature } = await parseUpload(req, await readBody(req, max));
    const hex = createHash('sha256').update(file).digest('hex');
    const digest = `sha256:${hex}`;
    // As memflow-registry: the signature is checked before the duplicate check; files without plug-ins are refused.
    const { metadata } = await enrichArtifact(s, target, { digest, size: file.length, bytes: file }, { signature, requireMemflow: true });
    if (await findAsset(s, target, PATH_PREFIX + hex, req.principal)) return json(reply, 'AlreadyExists');
    await storeAsset(
      s,
      target,
      { path: PATH_PREFIX + hex, data: Readable.from([file]), mediaType: 'application/octet-stream', metadata, expectedDigest: digest, expectedSize: file.length, maxBytes: max },
      actorOf(req.principal),
    );
    return json(reply, 'Added');
  });

  r.delete(`${base}/files/:digest`, { schema: { params: DigestParams }, config: cfg('delete') }, async (req, reply) => {
    if (!DIGEST.test(req.params.digest)) throw notFound();
    const removed = await removeAsset(s, req.repository!, PATH_PREFIX + req.params.digest, actorOf(req.principal));
    if (!removed) throw notFound();
    return reply.code(200).send();
  });
}

export const memflowFormat: FormatPlugin = {
  name: 'memflow',
  contract: FORMAT_CONTRACT_VERSION,
  kinds: [],
  repositoryFormat: 'generic',
  prefix: '/memflow',
  register: (app, s) => routes(app, s),
};

/**
 * The default repository's memflow API at the server root (`memflow.defaultRepository`), in a scope of its own
 * so its error handler stays there; without the setting it registers nothing.
 */
export const memflowRootFormat: FormatPlugin = {
  name: 'memflowroot',
  contract: FORMAT_CONTRACT_VERSION,
  kinds: [],
  repositoryFormat: 'generic',
  prefix: '',
  register: async (app, s) => {
    const root = s.config.memflow.defaultRepository;
    if (root !== undefined) await routes(app, s, root);
  },
};
