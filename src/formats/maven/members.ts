/**
 * How a Maven read meets the shared proxy/group machinery (src/repos/proxy, docs/proxy.md): which paths are
 * immutable and which are mutable metadata, the `maven-metadata.xml` each member of a read holds (generated
 * for hosted members, fetched with TTL for proxies), and checksums of proxied files, which we compute ourselves
 * (many upstreams, Debian's /usr/share/maven-repo among them, ship none; others' are checked against ours) and keep
 * on the cached asset.
 */
import type { FastifyRequest } from 'fastify';
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import type { Asset } from '../../meta/assets.ts';
import { bindCached, proxyRead, readOrder, upstreamFetch, upstreamUrl, UpstreamError, type Mutability } from '../../repos/proxy/index.ts';
import { hashingStream, parseChecksumBody, storedChecksums, type Checksums } from './checksums.ts';
import { hostedMetadata, readSmall } from './generate.ts';
import { parseMetadata, type MavenMetadata } from './metadata.ts';
import { isMetadataPath } from './path.ts';

/**
 * Released files never change upstream; metadata does, and so may a non-unique `-SNAPSHOT` file. Timestamped
 * SNAPSHOT builds (`x-1.0-20261123.101010-3.jar`) are immutable like releases.
 */
export function mutabilityOf(path: string): Mutability {
  if (isMetadataPath(path)) return 'mutable';
  const file = path.split('/').pop() ?? '';
  return /-SNAPSHOT[.-]/.test(file) ? 'mutable' : 'immutable';
}

/** The metadata a proxy repository's upstream has at `path` (cached for the repository's metadata TTL). */
async function proxyMetadata(s: Services, m: RepositoryRecord, path: string): Promise<MavenMetadata | null> {
  const got = await proxyRead(s, m, { path, mutability: 'mutable', mediaType: 'application/xml' });
  if (got.kind !== 'cached') return null;
  try {
    return parseMetadata(await readSmall(s, got.asset.digest, 4 << 20));
  } catch (e) {
    // A broken upstream document must not break the merged view of the other members.
    s.log.warn({ repository: m.name, path, err: (e as Error).message }, 'ignoring unreadable maven-metadata.xml from the upstream');
    return null;
  }
}

/**
 * Every member's document at `path`, in read order. A proxy whose upstream fails is left out while another
 * member answers; when none does, its error is the answer (502 rather than a misleading 404).
 */
export async function membersMetadata(s: Services, repo: RepositoryRecord, path: string, req: FastifyRequest): Promise<MavenMetadata[]> {
  const docs: MavenMetadata[] = [];
  let failure: unknown = null;
  for (const m of await readOrder(s, repo, req.principal)) {
    try {
      const d = m.kind === 'proxy' ? await proxyMetadata(s, m, path) : await hostedMetadata(s, m, path);
      if (d) docs.push(d);
    } catch (e) {
      if (m.kind !== 'proxy') throw e;
      failure ??= e;
    }
  }
  if (!docs.length && failure) throw failure;
  return docs;
}

/**
 * Checksums of a stored file: those computed when it was deployed, or — for files a proxy cached — computed
 * now from the blob and kept on the asset, so each file is hashed once. A proxied file is also compared with
 * the upstream's `.sha1` when the upstream has one (Maven Central does, Debian's repository does not): a
 * disagreement is a 502, never a silently served checksum of bad bytes.
 */
export async function checksumsOfAsset(s: Services, repo: RepositoryRecord, asset: Asset): Promise<Checksums> {
  const stored = storedChecksums(asset.metadata);
  if (stored) return stored;
  const h = hashingStream(await s.blobs.open(asset.digest));
  for await (const _ of h.stream);
  const checksums = h.result(asset.digest);
  // Only immutable files: a mutable one may have been replaced by a newer copy meanwhile.
  if (repo.kind === 'proxy' && mutabilityOf(asset.path) === 'immutable') {
    const upstream = await upstreamSha1(s, repo, asset.path);
    if (upstream && upstream !== checksums.sha1) {
      s.log.warn({ repository: repo.name, path: asset.path, upstream, computed: checksums.sha1 }, 'upstream .sha1 disagrees with the cached bytes');
      throw new UpstreamError(`the upstream's ${asset.path}.sha1 (${upstream}) does not match the bytes it served (${checksums.sha1})`, null);
    }
    const metadata = { ...asset.metadata, checksums, ...(upstream ? { upstreamSha1Verified: true } : {}) };
    await bindCached(s, repo, asset.path, { digest: asset.digest, size: asset.size, mediaType: asset.mediaType, metadata });
  }
  return checksums;
}

/** The upstream's SHA-1 of `path`, or null when it has none or cannot be asked now (then only ours counts). */
async function upstreamSha1(s: Services, repo: RepositoryRecord, path: string): Promise<string | null> {
  try {
    const res = await upstreamFetch(s, repo, upstreamUrl(repo, `${path}.sha1`));
    if (res.status !== 200 || !res.body) {
      res.body?.destroy();
      return null;
    }
    let text = '';
    for await (const c of res.body) {
      text += (c as Buffer).toString('latin1');
      if (text.length > 1024) break;
    }
    res.body.destroy();
    return parseChecksumBody(text, 'sha1');
  } catch {
    return null;
  }
}
