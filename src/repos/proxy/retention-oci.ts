/**
 * Proxy retention for OCI repositories (retention.ts decides what is unused; this decides how it goes). An image
 * is several assets (store.ts): a manifest is removed with deleteManifest, so its tags and referrers-index entry go
 * with it and no tag dangles; referrers-index entries are never removed on their own. A blob link, or a child
 * manifest of an index, stays while a manifest that stays needs it — a client that has the layers already pulls
 * only the manifest, and its image must still be whole here when the next client (or a dead upstream) comes.
 */
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { listAssets } from '../../meta/assets.ts';
import { deleteManifest, manifestBytes, paths } from '../../formats/oci/store.ts';

/** `<image>/_blobs|_manifests|_referrers/<rest>`: image name components never start with `_` (store.ts). */
const STRUCTURED = /^(.+?)\/_(blobs|manifests|referrers)\/(.+)$/;

interface Unused {
  manifests: Set<string>;
  blobs: Set<string>;
}

export async function sweepOci(s: Services, repo: RepositoryRecord, unused: string[], deleteRows: (paths: string[]) => Promise<number>, actor: string): Promise<number> {
  const other: string[] = [];
  const images = new Map<string, Unused>();
  for (const path of unused) {
    const m = STRUCTURED.exec(path);
    // Cached tag lists and referrers answers (`_proxy/…`) are plain assets.
    if (!m) {
      other.push(path);
      continue;
    }
    const [, image, kind, rest] = m;
    if (kind === 'referrers') continue;
    let u = images.get(image);
    if (!u) images.set(image, (u = { manifests: new Set(), blobs: new Set() }));
    (kind === 'manifests' ? u.manifests : u.blobs).add(rest);
  }
  let n = await deleteRows(other);
  for (const [image, u] of images) n += await sweepImage(s, repo, image, u, deleteRows, actor);
  return n;
}

async function sweepImage(s: Services, repo: RepositoryRecord, image: string, unused: Unused, deleteRows: (paths: string[]) => Promise<number>, actor: string): Promise<number> {
  const stored = await manifestsOf(s, repo, image);
  const needed = new Set<string>();
  const visit = async (digest: string): Promise<void> => {
    for (const r of await referencesOf(s, digest)) {
      if (needed.has(r)) continue;
      needed.add(r);
      if (stored.has(r)) await visit(r);
    }
  };
  for (const d of stored) if (!unused.manifests.has(d)) await visit(d);
  let n = 0;
  for (const d of unused.manifests) if (!needed.has(d) && (await deleteManifest(s, repo, image, d, actor))) n++;
  const links = [...unused.blobs].filter((d) => !needed.has(d)).map((d) => paths.blob(image, d));
  return n + (await deleteRows(links));
}

/** Digests of every manifest stored under exactly this image. */
async function manifestsOf(s: Services, repo: RepositoryRecord, image: string): Promise<Set<string>> {
  const out = new Set<string>();
  let afterId: number | undefined;
  for (;;) {
    const page = await listAssets(s.meta.db, { repoIds: [repo.id], prefix: paths.manifest(image, ''), afterId, limit: 1000 });
    for (const a of page) out.add(a.digest);
    if (page.length < 1000) return out;
    afterId = page[page.length - 1].id;
  }
}

interface ManifestRefs {
  config?: { digest?: unknown };
  layers?: { digest?: unknown }[];
  blobs?: { digest?: unknown }[];
  manifests?: { digest?: unknown }[];
}

/** What a manifest points at: config and layers (blobs of artifact manifests), or an index's manifests. */
async function referencesOf(s: Services, digest: string): Promise<string[]> {
  let doc: ManifestRefs;
  try {
    doc = JSON.parse((await manifestBytes(s, digest)).toString('utf8')) as ManifestRefs;
  } catch {
    return []; // bytes gone or not JSON: it protects nothing
  }
  const ds = [doc.config, ...(doc.layers ?? []), ...(doc.blobs ?? []), ...(doc.manifests ?? [])].map((d) => d?.digest);
  return ds.filter((d): d is string => typeof d === 'string');
}
