/**
 * Builds `maven-metadata.xml` of a hosted repository from what it stores, so clients never race on a file
 * they read, modify and write back: artifact level (versions, latest, release, lastUpdated), SNAPSHOT version
 * level (timestamp, buildNumber, snapshotVersions) and group level (plugin prefixes, the one part that only
 * an uploaded document can tell). lastUpdated comes from the assets' times, so the same state always gives
 * the same bytes — and a `.sha1` fetched after the file matches it.
 */
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { getAsset, listAssets, type Asset } from '../../meta/assets.ts';
import { GranaryError } from '../../server/errors.ts';
import { metadataDir, parseArtifactPath, type ArtifactFile } from './path.ts';
import { mergeMetadata, parseMetadata, withLatest, type MavenMetadata, type SnapshotVersion } from './metadata.ts';

/** Every asset of one repository under `prefix` (paged; listings are per directory, so they stay small). */
export async function assetsIn(s: Services, repo: RepositoryRecord, prefix: string): Promise<Asset[]> {
  const out: Asset[] = [];
  let afterId = 0;
  for (;;) {
    const page = await listAssets(s.meta.db, { repoIds: [repo.id], prefix, afterId, limit: 1000 });
    out.push(...page);
    if (page.length < 1000) return out;
    afterId = page[page.length - 1].id;
  }
}

/** ISO time → Maven's `yyyyMMddHHmmss` (UTC). */
export const mavenTime = (iso: string): string => iso.replace(/[-:T]/g, '').slice(0, 14);

/** Assets directly inside `dir` that follow the layout, with what their names say. */
async function artifactsIn(s: Services, repo: RepositoryRecord, dir: string, depth: 1 | 2): Promise<{ asset: Asset; file: ArtifactFile }[]> {
  const out: { asset: Asset; file: ArtifactFile }[] = [];
  for (const asset of await assetsIn(s, repo, `${dir}/`)) {
    if (asset.path.slice(dir.length + 1).split('/').length !== depth) continue;
    const file = parseArtifactPath(asset.path);
    if (file) out.push({ asset, file });
  }
  return out;
}

async function artifactLevel(s: Services, repo: RepositoryRecord, dir: string): Promise<MavenMetadata | null> {
  const segs = dir.split('/');
  if (segs.length < 2) return null;
  const artifactId = segs[segs.length - 1];
  const found = (await artifactsIn(s, repo, dir, 2)).filter((f) => f.file.artifactId === artifactId);
  if (!found.length) return null;
  const lastUpdated = found.map((f) => f.asset.updatedAt).reduce((a, b) => (a > b ? a : b));
  return {
    groupId: segs.slice(0, -1).join('.'),
    artifactId,
    versioning: { ...withLatest(found.map((f) => f.file.baseVersion)), lastUpdated: mavenTime(lastUpdated) },
  };
}

/** Orders SNAPSHOT files: timestamped builds by build number and time, above non-unique `-SNAPSHOT` files. */
const rank = (f: ArtifactFile): string => (f.buildNumber === undefined ? '0' : `1${String(f.buildNumber).padStart(10, '0')}${f.timestamp}`);

async function snapshotLevel(s: Services, repo: RepositoryRecord, dir: string): Promise<MavenMetadata | null> {
  const segs = dir.split('/');
  const found = (await artifactsIn(s, repo, dir, 1)).filter((f) => f.file.artifactId === segs[segs.length - 2]);
  if (!found.length) return null;
  // The newest build: highest build number, then newest timestamp.
  const builds = found.filter((f) => f.file.buildNumber !== undefined);
  const newest = builds.reduce<ArtifactFile | undefined>(
    (a, f) => (!a || f.file.buildNumber! > a.buildNumber! || (f.file.buildNumber === a.buildNumber && f.file.timestamp! > a.timestamp!) ? f.file : a),
    undefined,
  );
  const perKind = new Map<string, { v: SnapshotVersion; rank: string }>();
  for (const { asset, file } of found) {
    const updated = file.timestamp ? file.timestamp.replace('.', '') : mavenTime(asset.updatedAt);
    const key = `${file.classifier}:${file.extension}`;
    const r = rank(file);
    // Per classifier/extension the newest build wins; a timestamped file beats a plain -SNAPSHOT one.
    if ((perKind.get(key)?.rank ?? '') < r) perKind.set(key, { v: { classifier: file.classifier, extension: file.extension, value: file.version, updated }, rank: r });
  }
  const snapshotVersions = [...perKind.values()].map((e) => e.v).sort((a, b) => (a.extension + a.classifier).localeCompare(b.extension + b.classifier));
  return {
    groupId: segs.slice(0, -2).join('.'),
    artifactId: segs[segs.length - 2],
    version: segs[segs.length - 1],
    versioning: {
      versions: [],
      snapshot: newest ? { timestamp: newest.timestamp, buildNumber: newest.buildNumber } : { localCopy: true },
      lastUpdated: snapshotVersions.map((v) => v.updated).reduce((a, b) => (a > b ? a : b)),
      snapshotVersions,
    },
  };
}

/** Group-level (plugin prefix) metadata a client uploaded, if stored at this path. */
export async function storedPluginMetadata(s: Services, repo: RepositoryRecord, path: string): Promise<MavenMetadata | null> {
  const asset = await getAsset(s.meta.db, repo.id, path);
  if (!asset) return null;
  return parseMetadata(await readSmall(s, asset.digest, 1 << 20));
}

/** Reads a small blob (metadata documents) into a string, refusing anything larger than `max`. */
export async function readSmall(s: Services, digest: string, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of await s.blobs.open(digest)) {
    n += (c as Buffer).length;
    if (n > max) throw new GranaryError('TOO_LARGE', `metadata document larger than ${max} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The metadata a hosted repository serves at `path` (a `…/maven-metadata.xml`), or null when it has none. */
export async function hostedMetadata(s: Services, repo: RepositoryRecord, path: string): Promise<MavenMetadata | null> {
  const { dir, snapshotVersionDir } = metadataDir(path);
  if (snapshotVersionDir) return snapshotLevel(s, repo, dir);
  const parts = [await artifactLevel(s, repo, dir), await storedPluginMetadata(s, repo, path)].filter((m): m is MavenMetadata => !!m);
  return mergeMetadata(parts);
}
