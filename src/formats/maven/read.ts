/**
 * Reads (GET/HEAD) through any Maven repository kind: files through the shared read path (hosted asset, proxy
 * cache or upstream, group members in order), checksums from what the server computed, `maven-metadata.xml`
 * generated (hosted) or fetched (proxy) and merged across a group's members, and an HTML index for folders.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { GranaryError } from '../../server/errors.ts';
import { readThrough, sendProxyResult } from '../../repos/proxy/index.ts';
import { checksumsOf, storedChecksums, type Checksums } from './checksums.ts';
import { mergeMetadata, serializeMetadata } from './metadata.ts';
import { isMetadataPath, mediaTypeOf, splitChecksum, CHECKSUM_ALGOS, METADATA_FILE, type ChecksumAlgo } from './path.ts';
import { listDirectory, renderIndex } from './browse.ts';
import { checksumsOfAsset, membersMetadata, mutabilityOf } from './members.ts';

/** The merged metadata document `repo` serves at `path`, as text, or null. */
export async function metadataView(s: Services, repo: RepositoryRecord, path: string, req: FastifyRequest): Promise<string | null> {
  const merged = mergeMetadata(await membersMetadata(s, repo, path, req));
  return merged ? serializeMetadata(merged) : null;
}

/** Nexus and Artifactory send these; newer Maven Resolver transports read them instead of fetching `.sha1`. */
const checksumHeaders = (c: Checksums): Record<string, string> => Object.fromEntries(CHECKSUM_ALGOS.map((a) => [`x-checksum-${a}`, c[a]]));

function sendText(req: FastifyRequest, reply: FastifyReply, body: string, type: string, headers: Record<string, string> = {}): FastifyReply {
  const bytes = Buffer.from(body);
  reply.headers(headers).type(type).header('content-length', String(bytes.length));
  // Generated content changes when the repository does: clients must revalidate.
  reply.header('cache-control', 'no-cache');
  return req.method === 'HEAD' ? reply.send() : reply.send(bytes);
}

const notFound = (repo: RepositoryRecord, path: string) => new GranaryError('NOT_FOUND', `${path} not found in ${repo.name}`);

export async function read(s: Services, req: FastifyRequest, reply: FastifyReply, repo: RepositoryRecord, path: string, dir: boolean): Promise<FastifyReply> {
  if (dir) return browse(s, req, reply, repo, path);
  const checksum = splitChecksum(path);
  if (checksum) {
    const sum = await checksumOf(s, repo, checksum.base, checksum.algo, req);
    if (sum === null) throw notFound(repo, path);
    return sendText(req, reply, sum, mediaTypeOf(path));
  }
  if (isMetadataPath(path)) {
    const xml = await metadataView(s, repo, path, req);
    if (xml === null) throw notFound(repo, path);
    return sendText(req, reply, xml, 'application/xml', checksumHeaders(checksumsOf(xml)));
  }
  const result = await readThrough(s, repo, req.principal, { path, mutability: mutabilityOf(path), head: req.method === 'HEAD' });
  if (result.kind === 'not-found') {
    // A path naming a folder without the trailing slash still gets its index.
    if ((await listDirectory(s, repo, path, req)).length) return browse(s, req, reply, repo, path);
    throw notFound(repo, path);
  }
  const stored = result.kind === 'cached' ? storedChecksums(result.asset.metadata) : null;
  return sendProxyResult(req, reply, s, result, { contentType: mediaTypeOf(path), headers: stored ? checksumHeaders(stored) : {} });
}

async function checksumOf(s: Services, repo: RepositoryRecord, base: string, algo: ChecksumAlgo, req: FastifyRequest): Promise<string | null> {
  if (isMetadataPath(base)) {
    const xml = await metadataView(s, repo, base, req);
    return xml === null ? null : checksumsOf(xml)[algo];
  }
  // The file itself must be here to hash it: wait for a proxied one to be stored.
  const hit = await readThrough(s, repo, req.principal, { path: base, mutability: mutabilityOf(base), wait: true });
  if (hit.kind === 'not-found') return null;
  if (hit.kind !== 'cached') throw new GranaryError('INTERNAL', `${base} was not stored before hashing`);
  return (await checksumsOfAsset(s, hit.repo, hit.asset))[algo];
}

async function browse(s: Services, req: FastifyRequest, reply: FastifyReply, repo: RepositoryRecord, path: string): Promise<FastifyReply> {
  const entries = await listDirectory(s, repo, path, req);
  if (!entries.length && path !== '') throw new GranaryError('NOT_FOUND', `${path}/ not found in ${repo.name}`);
  // Generated metadata is part of the folder as clients see it.
  const metaPath = path ? `${path}/${METADATA_FILE}` : METADATA_FILE;
  if (!entries.some((e) => e.name === METADATA_FILE) && (await metadataView(s, repo, metaPath, req).catch(() => null)) !== null) {
    entries.push({ name: METADATA_FILE, dir: false });
    entries.sort((a, b) => (a.dir === b.dir ? a.name.localeCompare(b.name) : a.dir ? -1 : 1));
  }
  const base = `/maven/${repo.name}/${path ? `${path}/` : ''}`;
  return sendText(req, reply, renderIndex(base, entries), 'text/html; charset=utf-8');
}
