/**
 * Go proxy repositories: any GOPROXY upstream (https://proxy.golang.org, Athens, another Granary) through the
 * shared pull-through cache of src/repos/proxy. The upstream URL layout is the protocol's own, so the cache path
 * of an object is its URL path below the repository — the same paths hosted repositories use, which lets groups,
 * GC and the management API treat cached and hosted modules alike. `.info/.mod/.zip` of a canonical version never
 * change (cached for good); `@v/list`, `@latest` and `.info` of a query (`@v/master.info`) are mutable metadata,
 * revalidated after the repository's `metadataTtlSeconds`, and served stale while the upstream is down.
 */
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { proxyRead, type ProxyRequest } from '../../repos/proxy/index.ts';
import { readText } from './hosted.ts';
import { canonical, isValidSemver } from './semver.ts';
import { escapeCase } from './module.ts';
import { CONTENT_TYPES, sortVersions, type Answer, type GoExt, type GoSource, type LatestInfo } from './source.ts';

/** The cache/read request for `.info|.mod|.zip` of `version` (escaped in the path as in the URL). */
export function fileRequest(escapedModule: string, version: string, ext: GoExt): ProxyRequest {
  const exact = canonical(version) === version;
  return {
    path: `${escapedModule}/@v/${escapeCase(version)}.${ext}`,
    // A query such as `master` or `v1.2` resolves to different versions over time; a canonical version never moves.
    mutability: exact ? 'immutable' : 'mutable',
    mediaType: CONTENT_TYPES[ext],
  };
}

async function readMutable(s: Services, repo: RepositoryRecord, path: string, ext: 'list' | 'latest'): Promise<Answer<string> | null> {
  const r = await proxyRead(s, repo, { path, mutability: 'mutable', mediaType: CONTENT_TYPES[ext] });
  if (r.kind === 'not-found') return null;
  if (r.kind === 'cached') return { value: await readText(s, r.asset.digest), stale: r.stale };
  // Mutable objects are stored before they are served; a live stream here would be a contract change upstream.
  const chunks: Buffer[] = [];
  for await (const c of r.body ?? []) chunks.push(c as Buffer);
  return { value: Buffer.concat(chunks).toString('utf8'), stale: false };
}

export function proxySource(s: Services, repo: RepositoryRecord): GoSource {
  return {
    async list(module) {
      const got = await readMutable(s, repo, `${escapeCase(module)}/@v/list`, 'list');
      if (got === null) return null;
      // Keep only well-formed versions: an upstream's stray lines must not reach `go`.
      return { value: sortVersions(got.value.split('\n').map((l) => l.trim()).filter((l) => l && isValidSemver(l))), stale: got.stale };
    },
    async latest(module): Promise<Answer<LatestInfo> | null> {
      const got = await readMutable(s, repo, `${escapeCase(module)}/@latest`, 'latest');
      if (got === null) return null;
      try {
        const l = JSON.parse(got.value) as Partial<LatestInfo>;
        return typeof l.Version === 'string' && isValidSemver(l.Version) ? { value: { Version: l.Version, Time: String(l.Time ?? '') }, stale: got.stale } : null;
      } catch {
        return null;
      }
    },
  };
}
