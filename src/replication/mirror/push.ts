/**
 * Copies one manifest of a local OCI repository to a remote registry: its blobs (or, for an index, its child
 * manifests) first, then the manifest bytes exactly as stored — so every digest is preserved — then its
 * referrers (signatures, SBOMs), recursively. A remote without the referrers API gets the referrers tag schema
 * (`sha256-<hex>` → an index of the referrers), which is what pre-1.1 clients read.
 */
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { getManifest, manifestBytes, referrers } from '../../formats/oci/store.ts';
import type { RegistryClient } from './registry-client.ts';

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** The fields of an image manifest or index that copying follows. */
export interface ManifestJson {
  mediaType?: string;
  config?: { digest: string; size: number };
  layers?: { digest: string; size: number; urls?: string[] }[];
  manifests?: { digest: string }[];
}

export interface PushContext {
  s: Services;
  repo: RepositoryRecord;
  image: string;
  remote: RegistryClient;
  remoteName: string;
  /** Manifests already copied during this push (an index may share children; referrers may recurse). */
  done: Set<string>;
  blobsPushed: number;
}

/** Pushes the manifest `digest` of the image (and everything it needs); returns its bytes and media type. */
export async function pushManifest(c: PushContext, digest: string): Promise<{ mediaType: string; bytes: Buffer } | null> {
  const m = await getManifest(c.s.meta.db, c.repo, c.image, digest);
  if (!m) return null;
  const bytes = await manifestBytes(c.s, digest);
  if (c.done.has(digest)) return { mediaType: m.mediaType, bytes };
  c.done.add(digest);
  const json = JSON.parse(bytes.toString('utf8')) as ManifestJson;
  if (INDEX_TYPES.has(m.mediaType)) {
    for (const child of json.manifests ?? []) await pushManifest(c, child.digest);
  } else {
    // Foreign layers (with `urls`) are not ours to copy; the remote fetches them where the manifest says.
    const blobs = [json.config, ...(json.layers ?? []).filter((l) => !l.urls?.length)].filter((b): b is { digest: string; size: number } => !!b);
    for (const b of blobs) {
      const r = await c.remote.pushBlob(c.remoteName, b.digest, b.size, () => c.s.blobs.open(b.digest));
      if (r === 'pushed') c.blobsPushed++;
    }
  }
  await c.remote.putManifest(c.remoteName, digest, m.mediaType, bytes);
  await pushReferrers(c, digest);
  return { mediaType: m.mediaType, bytes };
}

/** Pushes the manifest `digest` (as pushManifest) and points the remote tag at it; false when it is not stored here. */
export async function pushTag(c: PushContext, tag: string, digest: string): Promise<boolean> {
  const m = await pushManifest(c, digest);
  if (m) await c.remote.putManifest(c.remoteName, tag, m.mediaType, m.bytes);
  return !!m;
}

/** The referrers of `subject` stored locally, pushed by digest, then listed in the referrers tag if needed. */
export async function pushReferrers(c: PushContext, subject: string): Promise<number> {
  const refs = await referrers(c.s, c.repo, c.image, subject);
  if (!refs.length) return 0;
  for (const d of refs) await pushManifest(c, d.digest);
  if (!(await c.remote.referrersApi(c.remoteName, subject))) {
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: refs }));
    const [alg, hex] = subject.split(':');
    await c.remote.putManifest(c.remoteName, `${alg}-${hex.slice(0, 64)}`, OCI_INDEX, index);
  }
  return refs.length;
}
