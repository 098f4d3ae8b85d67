/**
 * Deploys (PUT) into a hosted Maven repository: artifacts streamed into the blob store with every checksum
 * computed on the way; checksum files compared, never stored; `maven-metadata.xml` validated and — except for
 * plugin prefixes — left to the server to generate; repository policy, release immutability and SNAPSHOT
 * retention enforced. Everything that can refuse a deploy runs before the body is asked for (100-continue).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { getAsset } from '../../meta/assets.ts';
import { actorOf } from '../../auth/types.ts';
import { GranaryError } from '../../server/errors.ts';
import { removeAsset, storeAsset } from '../../repos/content.ts';
import { checksumHeaders, checksumsOf, hashingStream, mismatch, parseChecksumBody, storedChecksums } from './checksums.ts';
import { sendContinue } from '../../server/continue.ts';
import { storedPluginMetadata, assetsIn } from './generate.ts';
import { mergeMetadata, parseMetadata, serializeMetadata } from './metadata.ts';
import { mavenOptions } from './options.ts';
import { isMetadataPath, isSnapshotVersion, mediaTypeOf, metadataDir, parseArtifactPath, splitChecksum, type ArtifactFile } from './path.ts';
import { Readable } from 'node:stream';

const MAX_METADATA_BYTES = 1 << 20;
const MAX_CHECKSUM_BYTES = 1024;

/** Reads a small request body (checksums, metadata) after sending 100-continue; larger ones are a 413. */
async function smallBody(req: FastifyRequest, reply: FastifyReply, max: number): Promise<string> {
  sendContinue(req.raw, reply.raw);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req.raw) {
    n += (c as Buffer).length;
    if (n > max) throw new GranaryError('TOO_LARGE', `this file may be at most ${max} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Refuses SNAPSHOT content in a release repository and release content in a SNAPSHOT repository. */
function checkPolicy(repo: RepositoryRecord, snapshot: boolean, what: string): void {
  const { policy } = mavenOptions(repo);
  if (policy === 'release' && snapshot) {
    throw new GranaryError('BAD_REQUEST', `repository ${repo.name} takes releases only (policy release); ${what} is a SNAPSHOT`);
  }
  if (policy === 'snapshot' && !snapshot) {
    throw new GranaryError('BAD_REQUEST', `repository ${repo.name} takes SNAPSHOTs only (policy snapshot); ${what} is a release`);
  }
}

export async function deploy(s: Services, req: FastifyRequest, reply: FastifyReply, repo: RepositoryRecord, path: string): Promise<FastifyReply> {
  const checksum = splitChecksum(path);
  if (checksum) return deployChecksum(s, req, reply, repo, checksum.base, checksum.algo);
  if (isMetadataPath(path)) return deployMetadata(s, req, reply, repo, path);
  return deployFile(s, req, reply, repo, path);
}

/**
 * An uploaded checksum is accepted only if it matches what the server computed. For metadata the server
 * regenerates the document, so the client's checksum (of its own draft) cannot be compared: it is accepted
 * when well-formed, and the server serves checksums of what it serves.
 */
async function deployChecksum(
  s: Services,
  req: FastifyRequest,
  reply: FastifyReply,
  repo: RepositoryRecord,
  base: string,
  algo: 'md5' | 'sha1' | 'sha256' | 'sha512',
): Promise<FastifyReply> {
  const asset = isMetadataPath(base) ? null : await getAsset(s.meta.db, repo.id, base);
  if (!isMetadataPath(base) && !asset) throw new GranaryError('NOT_FOUND', `${base} is not stored in ${repo.name}; upload it before its checksum`);
  const sent = parseChecksumBody(await smallBody(req, reply, MAX_CHECKSUM_BYTES), algo);
  if (asset) {
    const stored = storedChecksums(asset.metadata);
    const actual = stored ? stored[algo] : algo === 'sha256' ? asset.digest.replace(/^sha256:/, '') : null;
    if (actual !== null && actual !== sent) {
      throw new GranaryError('BAD_REQUEST', `${algo} checksum mismatch for ${base}: uploaded ${sent}, stored file has ${actual}`);
    }
  }
  return reply.code(201).send();
}

async function deployMetadata(s: Services, req: FastifyRequest, reply: FastifyReply, repo: RepositoryRecord, path: string): Promise<FastifyReply> {
  const { snapshotVersionDir } = metadataDir(path);
  if (snapshotVersionDir) checkPolicy(repo, true, path);
  const doc = parseMetadata(await smallBody(req, reply, MAX_METADATA_BYTES));
  // Plugin prefixes (group-level metadata) cannot be derived from the stored files: keep them, united with
  // what was kept before. Versions and snapshots are always the server's own view of its files.
  if (doc.plugins?.length && !snapshotVersionDir) {
    const merged = mergeMetadata([{ plugins: doc.plugins }, ...[await storedPluginMetadata(s, repo, path)].filter((m) => !!m)])!;
    const xml = serializeMetadata({ plugins: merged.plugins });
    await storeAsset(s, repo, { path, data: Readable.from([Buffer.from(xml)]), mediaType: 'application/xml', metadata: { checksums: checksumsOf(xml) } }, actorOf(req.principal));
  }
  return reply.code(201).send();
}

async function deployFile(s: Services, req: FastifyRequest, reply: FastifyReply, repo: RepositoryRecord, path: string): Promise<FastifyReply> {
  const file = parseArtifactPath(path);
  const opts = mavenOptions(repo);
  const inSnapshotDir = isSnapshotVersion(path.split('/').at(-2) ?? '');
  if (file || inSnapshotDir) checkPolicy(repo, inSnapshotDir, path);
  const previous = await getAsset(s.meta.db, repo.id, path);
  const immutable = Boolean(file) && !inSnapshotDir && !opts.allowRedeploy;
  if (previous && immutable) {
    throw new GranaryError('CONFLICT', `${path} is a released file and already exists in ${repo.name}; releases cannot be redeployed (repository option allowRedeploy)`);
  }
  const expected = checksumHeaders(req.headers);
  const ac = new AbortController();
  req.raw.once('close', () => {
    if (!req.raw.complete) ac.abort();
  });
  const len = req.headers['content-length'];
  sendContinue(req.raw, reply.raw);
  const hashed = hashingStream(req.raw);
  const { asset } = await storeAsset(
    s,
    repo,
    {
      path,
      data: hashed.stream,
      mediaType: mediaTypeOf(path),
      expectedDigest: expected.sha256 ? `sha256:${expected.sha256}` : undefined,
      expectedSize: len === undefined ? undefined : Number(len),
      signal: ac.signal,
      // The check above answers the common case with its message; this closes the race of two first deploys.
      ifAbsent: immutable,
      enrich: async (blob) => {
        const checksums = hashed.result(blob.digest);
        const bad = mismatch(expected, checksums);
        // Thrown before the asset is bound: the path keeps what it had (the blob is left for the GC).
        if (bad) throw new GranaryError('BAD_REQUEST', `X-Checksum-${bad} does not match the uploaded bytes (${checksums[bad]})`);
        return { checksums };
      },
    },
    actorOf(req.principal),
  );
  if (file?.buildNumber !== undefined && opts.snapshotRetention) await applyRetention(s, repo, file, opts.snapshotRetention, req);
  return reply
    .code(previous ? 200 : 201)
    .header('location', `/maven/${repo.name}/${path}`)
    .send({ repository: repo.name, path, digest: asset.digest, size: asset.size });
}

/** Keeps the newest `keep` timestamped builds of a SNAPSHOT version; the build just stored always stays. */
async function applyRetention(s: Services, repo: RepositoryRecord, just: ArtifactFile, keep: number, req: FastifyRequest): Promise<void> {
  const dir = [just.groupPath, just.artifactId, just.baseVersion].filter(Boolean).join('/');
  const files = (await assetsIn(s, repo, `${dir}/`))
    .map((a) => ({ a, f: parseArtifactPath(a.path) }))
    .filter((x) => x.f?.buildNumber !== undefined && x.f.artifactId === just.artifactId && !x.a.path.slice(dir.length + 1).includes('/'));
  const builds = [...new Set(files.map((x) => x.f!.buildNumber!))].sort((a, b) => b - a);
  const drop = new Set(builds.slice(keep).filter((b) => b !== just.buildNumber));
  for (const x of files) {
    if (drop.has(x.f!.buildNumber!)) await removeAsset(s, repo, x.a.path, actorOf(req.principal));
  }
  if (drop.size) req.log.info({ repo: repo.name, dir, dropped: [...drop] }, 'maven snapshot retention removed old builds');
}
