/**
 * Hosted Go repositories: each published version is three assets under the case-escaped module path —
 * `<module>/@v/<version>.zip` (as uploaded), `.mod` (its go.mod) and `.info` (version and publish time). The
 * `.zip` is written last and marks the version as published; `list` and `@latest` are derived from the assets.
 * Escaped paths keep the asset table free of case-only differences (SQLite's LIKE folds ASCII case).
 */
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { getAsset, listAssets } from '../../meta/assets.ts';
import { escapeCase, unescapeCase, type ModuleVersion } from './module.ts';
import { isRetracted, parseModFile, type Retraction } from './modfile.ts';
import { betterLatest, sortVersions, type Answer, type GoExt, type GoSource, type LatestInfo } from './source.ts';
import { isPseudoVersion } from './semver.ts';

export const assetPath = (mv: ModuleVersion, ext: GoExt): string => `${escapeCase(mv.path)}/@v/${escapeCase(mv.version)}.${ext}`;

/** Every published version of `module` in `repo`, pseudo-versions included. */
export async function publishedVersions(s: Services, repo: RepositoryRecord, module: string): Promise<string[]> {
  const prefix = `${escapeCase(module)}/@v/`;
  const out: string[] = [];
  let afterId = 0;
  for (;;) {
    const page = await listAssets(s.meta.db, { repoIds: [repo.id], prefix, afterId, limit: 1000 });
    for (const a of page) {
      const rest = a.path.slice(prefix.length);
      // LIKE matched case-insensitively and `_` literally: keep exact children of this module's @v/ only.
      if (!a.path.startsWith(prefix) || rest.includes('/') || !rest.endsWith('.zip')) continue;
      const v = unescapeCase(rest.slice(0, -4));
      if (v) out.push(v);
    }
    if (page.length < 1000) return out;
    afterId = page[page.length - 1].id;
  }
}

/** Reads a small stored blob (a .mod or .info) as text. */
export async function readText(s: Services, digest: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of await s.blobs.open(digest)) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * `@latest` as the go command would choose it from these versions: the highest release, else prerelease, else
 * pseudo-version, skipping versions retracted by the go.mod of the highest version (when every version is
 * retracted, the best retracted one is still named, so `go` can report the retraction).
 */
export function chooseLatest(versions: readonly string[], retract: readonly Retraction[]): string | null {
  let best: string | null = null;
  let bestAny: string | null = null;
  for (const v of versions) {
    if (bestAny === null || betterLatest(v, bestAny)) bestAny = v;
    if (isRetracted(v, retract)) continue;
    if (best === null || betterLatest(v, best)) best = v;
  }
  return best ?? bestAny;
}

/**
 * The version whose go.mod states the module's retractions: the one `go` calls latest before looking at
 * retractions (highest release, else prerelease, else pseudo-version).
 */
export function retractionSource(versions: readonly string[]): string | null {
  return chooseLatest(versions, []);
}

export function hostedSource(s: Services, repo: RepositoryRecord): GoSource {
  const file = (mv: ModuleVersion, ext: GoExt) => getAsset(s.meta.db, repo.id, assetPath(mv, ext));
  return {
    async list(module) {
      const vs = await publishedVersions(s, repo, module);
      return vs.length ? { value: sortVersions(vs.filter((v) => !isPseudoVersion(v))), stale: false } : null;
    },
    async latest(module): Promise<Answer<LatestInfo> | null> {
      const vs = await publishedVersions(s, repo, module);
      const src = retractionSource(vs);
      if (!src) return null;
      let retract: Retraction[] = [];
      const mod = await file({ path: module, version: src }, 'mod');
      if (mod) {
        try {
          retract = parseModFile(await readText(s, mod.digest)).retract;
        } catch {
          /* checked at publish; an unreadable go.mod retracts nothing */
        }
      }
      const v = chooseLatest(vs, retract);
      const info = v ? await file({ path: module, version: v }, 'info') : null;
      return info ? { value: JSON.parse(await readText(s, info.digest)) as LatestInfo, stale: false } : null;
    },
  };
}
