/**
 * What one repository answers for the mutable half of the GOPROXY protocol — the versions it lists and its
 * `@latest` — whatever its kind: hosted repositories from their assets (hosted.ts), proxies through the proxy
 * machinery (proxy.ts), a group by merging its members (plugin.ts). The immutable `.info`/`.mod`/`.zip` need no
 * merging: they are read through src/repos/proxy's readThrough, the first member that has one answering.
 */
import { compareSemver, isPseudoVersion, prerelease } from './semver.ts';

export type GoExt = 'info' | 'mod' | 'zip';

export interface LatestInfo {
  Version: string;
  Time: string;
}

/** An answer, and whether it came from a proxy's cache past its TTL because the upstream failed. */
export interface Answer<T> {
  value: T;
  stale: boolean;
}

export interface GoSource {
  /** Listed versions (no pseudo-versions, as the protocol asks), or null when the module is unknown here. */
  list(module: string): Promise<Answer<string[]> | null>;
  /** The `@latest` answer, or null when this source has no version of the module. */
  latest(module: string): Promise<Answer<LatestInfo> | null>;
}

export const CONTENT_TYPES: Record<GoExt | 'list' | 'latest', string> = {
  list: 'text/plain; charset=utf-8',
  latest: 'application/json',
  info: 'application/json',
  mod: 'text/plain; charset=utf-8',
  zip: 'application/zip',
};

/** Rank of a version for `@latest`: releases beat prereleases beat pseudo-versions, as in `go`'s query. */
function rank(v: string): number {
  if (isPseudoVersion(v)) return 0;
  return prerelease(v) ? 1 : 2;
}

/** True when `a` is the better `@latest` candidate than `b`. */
export function betterLatest(a: string, b: string): boolean {
  const d = rank(a) - rank(b);
  return d !== 0 ? d > 0 : compareSemver(a, b) > 0;
}

/** Deduplicated and sorted in semantic-version order, as `go list -m -versions` shows them. */
export function sortVersions(vs: Iterable<string>): string[] {
  return [...new Set(vs)].sort(compareSemver);
}
