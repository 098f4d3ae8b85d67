/**
 * The OCI storage model, on top of meta (assets, tags, events) and the blob store. Nothing here speaks HTTP.
 *
 * Every fact is an asset of the Granary repository, under the image name, so events, replication, GC and the
 * management API see OCI content like any other (the `_` keywords cannot clash with an image name: a name
 * component never starts with `_`):
 *   <image>/_blobs/<digest>                    a blob linked into the image (pushed or mounted there)
 *   <image>/_manifests/<digest>                a manifest; media type = the stored type, bytes in the blob store
 *   <image>/_referrers/<subject>/<digest>      the referrers index: metadata.descriptor is what GET referrers lists
 * Tags live in the tags table with scope = image name, target = manifest digest.
 * Every change goes through putAsset/deleteAsset/setTag/deleteTag inside one transaction, so each appends its
 * event in the same transaction as the change.
 */
import { Readable } from 'node:stream';
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import type { Db, Tx } from '../../meta/db.ts';
import { withTx } from '../../meta/db.ts';
import { deleteAsset, getAsset, listAssets, putAsset, type Asset } from '../../meta/assets.ts';
import { deleteTag, getTag, listTags, setTag, tagsPointingAt } from '../../meta/tags.ts';
import type { Descriptor } from './descriptor.ts';
import type { Reference } from './names.ts';

export const paths = {
  blob: (image: string, digest: string): string => `${image}/_blobs/${digest}`,
  manifest: (image: string, digest: string): string => `${image}/_manifests/${digest}`,
  referrer: (image: string, subject: string, digest: string): string => `${image}/_referrers/${subject}/${digest}`,
  referrersOf: (image: string, subject: string): string => `${image}/_referrers/${subject}/`,
  /** Prefix of everything stored under exactly this image (not under longer names starting with it). */
  image: (image: string): string => `${image}/_`,
};

type Repo = Pick<RepositoryRecord, 'id' | 'name'>;

export interface StoredManifest {
  digest: string;
  size: number;
  mediaType: string;
  /** Digest of the `subject`, when the manifest has one (not filled in by the tag fast path). */
  subject?: string;
}

function toManifest(a: Asset): StoredManifest {
  const m: StoredManifest = { digest: a.digest, size: a.size, mediaType: a.mediaType ?? 'application/octet-stream' };
  if (typeof a.metadata.subject === 'string') m.subject = a.metadata.subject;
  return m;
}

// ---------------------------------------------------------------------------------------------------------------
// Blobs

/** A blob readable in the image: linked there, or a manifest of the image (manifests are blobs too). */
export async function findBlob(s: Services, repo: Repo, image: string, digest: string): Promise<Asset | null> {
  return (await getAsset(s.meta.db, repo.id, paths.blob(image, digest))) ?? (await getAsset(s.meta.db, repo.id, paths.manifest(image, digest)));
}

/** The blob's link in the image (not manifests), or null. */
export function linkedBlob(db: Db, repo: Repo, image: string, digest: string): Promise<Asset | null> {
  return getAsset(db, repo.id, paths.blob(image, digest));
}

/** Links a stored blob into the image (no event when it is linked already). */
export async function linkBlob(tx: Tx, repo: Repo, image: string, blob: { digest: string; size: number }, actor: string | null): Promise<void> {
  if (await linkedBlob(tx, repo, image, blob.digest)) return;
  await putAsset(tx, { repoId: repo.id, repo: repo.name, path: paths.blob(image, blob.digest), digest: blob.digest, size: blob.size }, actor);
}

/** Removes the link; the bytes stay in the blob store for GC. False when it was not linked. */
export async function unlinkBlob(s: Services, repo: Repo, image: string, digest: string, actor: string | null): Promise<boolean> {
  return withTx(s.meta.db, async (tx) => (await deleteAsset(tx, repo, paths.blob(image, digest), actor)) !== null);
}

// ---------------------------------------------------------------------------------------------------------------
// Manifests

export async function getManifest(db: Db, repo: Repo, image: string, digest: string): Promise<StoredManifest | null> {
  const a = await getAsset(db, repo.id, paths.manifest(image, digest));
  return a ? toManifest(a) : null;
}

/**
 * What a manifest digest's bytes are: their length and media type. Both are properties of the bytes (the type
 * comes from the body or must agree with it), so this never goes stale and is shared by every image.
 */
const KNOWN_MAX = 100_000;
const known = new Map<string, { size: number; mediaType: string }>();

function know(m: { digest: string; size: number; mediaType: string }): void {
  if (known.size >= KNOWN_MAX) known.clear();
  known.set(m.digest, { size: m.size, mediaType: m.mediaType });
}

/**
 * The manifest a tag or digest names in the image, or null. A tag needs one query: tags are only ever set in
 * the transaction that has the manifest in the image, and deleted with it (putManifest, deleteManifest), so a
 * tag's target is there, and what its bytes are is known once seen.
 */
export async function resolveManifest(s: Services, repo: Repo, image: string, ref: Reference): Promise<StoredManifest | null> {
  let digest: string;
  if (ref.kind === 'digest') {
    digest = ref.digest;
  } else {
    const tag = await getTag(s.meta.db, repo.id, image, ref.tag);
    if (!tag) return null;
    digest = tag.target;
    const k = known.get(digest);
    if (k) return { digest, size: k.size, mediaType: k.mediaType };
  }
  const m = await getManifest(s.meta.db, repo, image, digest);
  if (m) know(m);
  return m;
}

/**
 * Manifest bytes by digest: content-addressed, so the cache can never serve stale bytes for a digest (callers
 * check the manifest exists in the image first). Bounded by total size; least recently used first out.
 */
const CACHE_MAX_BYTES = 64 * 1024 * 1024;
const cache = new Map<string, Buffer>();
let cached = 0;

export async function manifestBytes(s: Services, digest: string): Promise<Buffer> {
  const hit = cache.get(digest);
  if (hit) {
    cache.delete(digest);
    cache.set(digest, hit);
    return hit;
  }
  const chunks: Buffer[] = [];
  for await (const c of await s.blobs.open(digest)) chunks.push(c as Buffer);
  const bytes = Buffer.concat(chunks);
  remember(digest, bytes);
  return bytes;
}

function remember(digest: string, bytes: Buffer): void {
  if (bytes.length > CACHE_MAX_BYTES / 8 || cache.has(digest)) return;
  cache.set(digest, bytes);
  cached += bytes.length;
  for (const [k, v] of cache) {
    if (cached <= CACHE_MAX_BYTES) break;
    cache.delete(k);
    cached -= v.length;
  }
}

export interface ManifestWrite {
  digest: string;
  bytes: Buffer;
  mediaType: string;
  tag?: string;
  /** The referrers-index entry to record when the manifest has a subject. */
  referrer?: { subject: string; descriptor: Descriptor };
  /** Runs first inside the transaction: policy checks (throw to write nothing) and writes that go with it. */
  prepare?: (tx: Tx) => Promise<void>;
}

/** Stores the bytes (verified against the digest), then binds manifest, referrer entry and tag in one transaction. */
export async function putManifest(s: Services, repo: Repo, image: string, w: ManifestWrite, actor: string | null): Promise<void> {
  if (!(await s.blobs.stat(w.digest))) {
    await s.blobs.put(Readable.from([w.bytes]), { expectedDigest: w.digest, expectedSize: w.bytes.length });
  }
  remember(w.digest, w.bytes);
  know({ digest: w.digest, size: w.bytes.length, mediaType: w.mediaType });
  await withTx(s.meta.db, async (tx) => {
    await w.prepare?.(tx);
    const path = paths.manifest(image, w.digest);
    if (!(await getAsset(tx, repo.id, path))) {
      const metadata = w.referrer ? { subject: w.referrer.subject } : {};
      await putAsset(tx, { repoId: repo.id, repo: repo.name, path, digest: w.digest, size: w.bytes.length, mediaType: w.mediaType, metadata }, actor);
    }
    if (w.referrer) {
      const rpath = paths.referrer(image, w.referrer.subject, w.digest);
      if (!(await getAsset(tx, repo.id, rpath))) {
        await putAsset(
          tx,
          {
            repoId: repo.id,
            repo: repo.name,
            path: rpath,
            digest: w.digest,
            size: w.bytes.length,
            mediaType: w.mediaType,
            metadata: { descriptor: w.referrer.descriptor },
          },
          actor,
        );
      }
    }
    if (w.tag !== undefined) await setTag(tx, repo, image, w.tag, w.digest, actor);
  });
}

/**
 * Deletes a manifest, every tag pointing at it and its referrers-index entry, in one transaction.
 * `check` runs first inside it with the tags that would go (policy). False when the manifest does not exist.
 */
export async function deleteManifest(
  s: Services,
  repo: Repo,
  image: string,
  digest: string,
  actor: string | null,
  check?: (tags: string[]) => void,
): Promise<boolean> {
  return withTx(s.meta.db, async (tx) => {
    const m = await getManifest(tx, repo, image, digest);
    if (!m) return false;
    const tags = (await tagsPointingAt(tx, repo.id, image, digest)).map((t) => t.name);
    check?.(tags);
    for (const t of tags) await deleteTag(tx, repo, image, t, actor);
    if (m.subject) await deleteAsset(tx, repo, paths.referrer(image, m.subject, digest), actor);
    await deleteAsset(tx, repo, paths.manifest(image, digest), actor);
    return true;
  });
}

/** Removes a tag only (the manifest stays, reachable by digest). False when there was no such tag. */
export async function removeTag(s: Services, repo: Repo, image: string, tag: string, actor: string | null): Promise<boolean> {
  return withTx(s.meta.db, (tx) => deleteTag(tx, repo, image, tag, actor));
}

// ---------------------------------------------------------------------------------------------------------------
// Discovery

/** Every tag of the image (order: the caller sorts; tags/list uses compareTags). */
export async function imageTags(s: Services, repo: Repo, image: string): Promise<string[]> {
  return (await listTags(s.meta.db, repo.id, image)).map((t) => t.name);
}

/** Whether anything (blob link, manifest, referrer) is stored under exactly this image name. */
export async function imageExists(s: Services, repo: Repo, image: string): Promise<boolean> {
  return (await listAssets(s.meta.db, { repoIds: [repo.id], prefix: paths.image(image), limit: 1 })).length > 0;
}

/** Descriptors of the manifests whose subject is `subject`, oldest first. */
export async function referrers(s: Services, repo: Repo, image: string, subject: string): Promise<Descriptor[]> {
  const out: Descriptor[] = [];
  let afterId: number | undefined;
  for (;;) {
    const page = await listAssets(s.meta.db, { repoIds: [repo.id], prefix: paths.referrersOf(image, subject), afterId, limit: 1000 });
    for (const a of page) {
      const d = a.metadata.descriptor as Descriptor | undefined;
      if (d) out.push(d);
    }
    if (page.length < 1000) return out;
    afterId = page[page.length - 1].id;
  }
}
