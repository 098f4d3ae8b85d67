/**
 * One OCI proxy repository in front of one upstream registry (Docker Hub, ghcr.io, quay.io, ACR, a Distribution,
 * another Granary). What is fetched is stored exactly as a push would store it (store.ts paths, tags table), so
 * every hosted read path, GC and the management API work on it unchanged; this module only decides when to ask
 * the upstream, through the shared machinery of repos/proxy:
 *   blobs, manifests by digest  immutable — fetched once (single-flight, digest verified) and kept
 *   tag → digest                mutable — confirmed with a HEAD (free of Docker Hub's pull limit) after the TTL
 *   tags list, referrers        mutable — the upstream's answer cached for the TTL, merged with what is stored
 * Names: Docker Hub's one-segment names are `library/<name>` upstream, and cached under that name.
 */
import { createHash } from 'node:crypto';
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { getTag, setTag, type Tag } from '../../meta/tags.ts';
import { withTx } from '../../meta/db.ts';
import {
  countCacheHit,
  isFreshPath,
  knownMissing,
  markFresh,
  markMissing,
  noteAccess,
  proxyOptionsOf,
  proxyRead,
  upstreamFetch,
  UpstreamError,
  upstreamUnavailable,
  type ProxyResult,
} from '../../repos/proxy/index.ts';
import type { Descriptor } from './descriptor.ts';
import { bareMediaType, isManifestMediaType, MANIFEST_MEDIA_TYPES } from './media-types.ts';
import type { Reference } from './names.ts';
import { findBlob, getManifest, imageTags, paths, putManifest, referrers, type StoredManifest } from './store.ts';
import { MANIFEST_MAX_BYTES } from './manifest.ts';

/** What a proxy asks upstream registries for: every manifest type Granary stores. */
export const PROXY_ACCEPT = [...MANIFEST_MEDIA_TYPES].join(', ');

/** The name upstream (and in the cache): `library/` added for Docker Hub's official images. */
export function upstreamName(repo: RepositoryRecord, image: string): string {
  return proxyOptionsOf(repo).dockerHubLibrary && !image.includes('/') ? `library/${image}` : image;
}

function v2(repo: RepositoryRecord, name: string, rest: string): string {
  return `${(repo.config.upstream ?? '').replace(/\/+$/, '')}/v2/${name}/${rest}`;
}

const scope = (name: string) => `repository:${name}:pull`;
const tagKey = (name: string, tag: string) => `${name}/_tags/${tag}`;

export interface ProxiedManifest extends StoredManifest {
  stale: boolean;
}

/** A manifest by digest, fetched and stored when missing. Null when the upstream does not have it. */
async function manifestByDigest(s: Services, repo: RepositoryRecord, name: string, digest: string): Promise<StoredManifest | null> {
  const local = await getManifest(s.meta.db, repo, name, digest);
  if (local) {
    countCacheHit(s, repo);
    noteAccess(s, { repoId: repo.id, path: paths.manifest(name, digest) });
    return local;
  }
  const r = await proxyRead(s, repo, {
    path: paths.manifest(name, digest),
    mutability: 'immutable',
    url: v2(repo, name, `manifests/${digest}`),
    headers: { accept: PROXY_ACCEPT },
    scope: scope(name),
    expectedDigest: digest,
    wait: true,
  });
  if (r.kind !== 'cached') return null;
  const mediaType = bareMediaType(r.asset.mediaType ?? undefined);
  if (!isManifestMediaType(mediaType)) {
    throw new UpstreamError(`upstream answered ${digest} of ${name} with media type ${JSON.stringify(r.asset.mediaType)}, not a manifest`, null);
  }
  return { digest, size: r.asset.size, mediaType };
}

/**
 * The manifest a reference names, through the proxy. A tag younger than the TTL is answered from the cache;
 * an older one is confirmed with HEAD (only a moved tag costs a GET). Upstream down: the cached tag, stale.
 */
export async function proxyManifest(s: Services, repo: RepositoryRecord, image: string, ref: Reference): Promise<ProxiedManifest | null> {
  const name = upstreamName(repo, image);
  if (ref.kind === 'digest') {
    const m = await manifestByDigest(s, repo, name, ref.digest);
    return m && { ...m, stale: false };
  }
  const key = tagKey(name, ref.tag);
  const tag = await getTag(s.meta.db, repo.id, name, ref.tag);
  const cachedOf = async (stale: boolean) => {
    const m = tag && (await getManifest(s.meta.db, repo, name, tag.target));
    // Served from the cache: counts as a pull for retention (unusedDays).
    if (m) noteAccess(s, { repoId: repo.id, path: paths.manifest(name, m.digest) });
    return m ? { ...m, stale } : null;
  };
  if (tag && isFreshPath(s, repo, key, tag.updatedAt)) {
    countCacheHit(s, repo);
    return cachedOf(false);
  }
  if (!tag && knownMissing(s, repo, key)) return null;
  // Many clients asking for one tag at once (a CI fleet) make one revalidation.
  const inFlight = revalidations(s);
  const flightKey = `${repo.id}:${key}`;
  const running = inFlight.get(flightKey);
  if (running) return running;
  const p = revalidateTag(s, repo, name, ref.tag, key, tag, cachedOf);
  inFlight.set(flightKey, p);
  try {
    return await p;
  } finally {
    inFlight.delete(flightKey);
  }
}

const flightsBySvc = new WeakMap<Services, Map<string, Promise<ProxiedManifest | null>>>();
function revalidations(s: Services): Map<string, Promise<ProxiedManifest | null>> {
  let m = flightsBySvc.get(s);
  if (!m) flightsBySvc.set(s, (m = new Map()));
  return m;
}

async function revalidateTag(
  s: Services,
  repo: RepositoryRecord,
  name: string,
  tagName: string,
  key: string,
  tag: Tag | null,
  cachedOf: (stale: boolean) => Promise<ProxiedManifest | null>,
): Promise<ProxiedManifest | null> {
  let digest: string | undefined;
  try {
    const res = await upstreamFetch(s, repo, v2(repo, name, `manifests/${tagName}`), { method: 'HEAD', headers: { accept: PROXY_ACCEPT }, scope: scope(name) });
    if (res.status === 404) {
      markMissing(s, repo, key);
      return null;
    }
    if (res.status !== 200) throw new UpstreamError(`upstream answered HTTP ${res.status} to HEAD ${name}:${tagName}`, res.status);
    digest = res.headers['docker-content-digest'];
    if (!digest) {
      // A registry that does not name the digest on HEAD: GET the manifest by tag (bounded) and hash it.
      const m = await manifestByTag(s, repo, name, tagName);
      if (!m) return null;
      markFresh(s, repo, key);
      return { ...m, stale: false };
    }
    if (tag && tag.target === digest) {
      markFresh(s, repo, key);
      return cachedOf(false);
    }
    const m = await manifestByDigest(s, repo, name, digest);
    if (!m) return null;
    await withTx(s.meta.db, (tx) => setTag(tx, repo, name, tagName, digest!, null));
    markFresh(s, repo, key);
    return { ...m, stale: false };
  } catch (e) {
    if (!tag || !upstreamUnavailable(e)) throw e;
    s.log.warn({ repository: repo.name, image: name, tag: tagName, err: (e as Error).message }, 'upstream failed: serving the cached tag past its TTL');
    countCacheHit(s, repo, true);
    return cachedOf(true);
  }
}

/** GET a manifest by tag, read it (at most MANIFEST_MAX_BYTES), store it under its digest and move the tag. */
async function manifestByTag(s: Services, repo: RepositoryRecord, name: string, tag: string): Promise<StoredManifest | null> {
  const res = await upstreamFetch(s, repo, v2(repo, name, `manifests/${tag}`), { headers: { accept: PROXY_ACCEPT }, scope: scope(name) });
  if (res.status === 404) return null;
  if (res.status !== 200 || !res.body) throw new UpstreamError(`upstream answered HTTP ${res.status} to GET ${name}:${tag}`, res.status);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body) {
    n += (c as Buffer).length;
    if (n > MANIFEST_MAX_BYTES) {
      res.body.destroy();
      throw new UpstreamError(`upstream manifest ${name}:${tag} is larger than ${MANIFEST_MAX_BYTES} bytes`, null);
    }
    chunks.push(c as Buffer);
  }
  const bytes = Buffer.concat(chunks);
  const mediaType = bareMediaType(res.headers['content-type']);
  if (!isManifestMediaType(mediaType)) throw new UpstreamError(`upstream answered ${name}:${tag} with media type ${JSON.stringify(mediaType)}, not a manifest`, null);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await putManifest(s, repo, name, { digest, bytes, mediaType, tag }, null);
  return { digest, size: bytes.length, mediaType };
}

/** A blob through the proxy: cached (or a cached manifest of that digest), else streamed from the upstream. */
export async function proxyBlob(s: Services, repo: RepositoryRecord, image: string, digest: string, head: boolean): Promise<ProxyResult> {
  const name = upstreamName(repo, image);
  const local = await findBlob(s, repo, name, digest);
  if (local) {
    countCacheHit(s, repo);
    noteAccess(s, local);
    return { kind: 'cached', asset: local, repo, stale: false };
  }
  return proxyRead(s, repo, {
    path: paths.blob(name, digest),
    mutability: 'immutable',
    url: v2(repo, name, `blobs/${digest}`),
    scope: scope(name),
    expectedDigest: digest,
    mediaType: 'application/octet-stream',
    head,
  });
}

async function readJson<T>(s: Services, r: ProxyResult): Promise<T | null> {
  if (r.kind !== 'cached') return null;
  const chunks: Buffer[] = [];
  for await (const c of await s.blobs.open(r.asset.digest)) chunks.push(c as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
  } catch {
    throw new UpstreamError(`upstream answered invalid JSON for ${r.asset.path}`, null);
  }
}

/** The upstream's tags (cached for the TTL) with the tags stored here; null when neither knows the name. */
export async function proxyTags(s: Services, repo: RepositoryRecord, image: string): Promise<string[] | null> {
  const name = upstreamName(repo, image);
  const local = await imageTags(s, repo, name);
  let upstream: string[] | null = null;
  try {
    const r = await proxyRead(s, repo, { path: `${name}/_proxy/tags`, mutability: 'mutable', url: v2(repo, name, 'tags/list'), scope: scope(name), mediaType: 'application/json' });
    upstream = (await readJson<{ tags?: string[] | null }>(s, r))?.tags ?? (r.kind === 'cached' ? [] : null);
  } catch (e) {
    if (!local.length) throw e;
    s.log.warn({ repository: repo.name, image: name, err: (e as Error).message }, 'upstream failed: listing the cached tags only');
  }
  if (upstream === null && !local.length) return null;
  return [...new Set([...(upstream ?? []), ...local])];
}

/** The upstream's referrers of `subject` (cached for the TTL) with those stored here. */
export async function proxyReferrers(s: Services, repo: RepositoryRecord, image: string, subject: string): Promise<Descriptor[]> {
  const name = upstreamName(repo, image);
  const out = await referrers(s, repo, name, subject);
  try {
    const r = await proxyRead(s, repo, {
      path: `${name}/_proxy/referrers/${subject}`,
      mutability: 'mutable',
      url: v2(repo, name, `referrers/${subject}`),
      headers: { accept: 'application/vnd.oci.image.index.v1+json' },
      scope: scope(name),
      mediaType: 'application/vnd.oci.image.index.v1+json',
    });
    const idx = await readJson<{ manifests?: Descriptor[] }>(s, r);
    const seen = new Set(out.map((d) => d.digest));
    for (const d of idx?.manifests ?? []) if (!seen.has(d.digest)) out.push(d);
  } catch (e) {
    s.log.warn({ repository: repo.name, image: name, err: (e as Error).message }, 'upstream referrers unavailable: listing the cached ones only');
  }
  return out;
}
