/**
 * Semantic versions as the `go` command reads them (golang.org/x/mod/semver): a leading "v", major[.minor[.patch]],
 * optional -prerelease and +build. Go compares and sorts versions with these exact rules, so the proxy's `list`
 * order, `@latest` choice and pseudo-version detection must use them too — npm-style semver differs in details.
 */

export interface Semver {
  major: string;
  minor: string;
  patch: string;
  /** "-rc.1" or "" */
  prerelease: string;
  /** "+incompatible" or "" */
  build: string;
  /** major.minor.patch were all given (only such versions are canonical). */
  full: boolean;
}

const NUM = /^(0|[1-9][0-9]*)$/;
const IDENT = /^[0-9A-Za-z-]+$/;

/** Parses a Go semantic version; null when it is not one. */
export function parseSemver(v: string): Semver | null {
  const m = /^v([0-9]+)(?:\.([0-9]+)(?:\.([0-9]+))?)?(-[^+]*)?(\+.*)?$/.exec(v);
  if (!m) return null;
  const [, major, minor, patch, pre = '', build = ''] = m;
  if (!NUM.test(major) || (minor !== undefined && !NUM.test(minor)) || (patch !== undefined && !NUM.test(patch))) return null;
  // As in x/mod/semver, shorthand forms (v1, v1.2) take no prerelease or build suffix.
  if (patch === undefined && (pre || build)) return null;
  if (pre) {
    for (const id of pre.slice(1).split('.')) {
      if (!IDENT.test(id)) return null;
      if (/^[0-9]+$/.test(id) && !NUM.test(id)) return null; // numeric identifiers have no leading zeros
    }
  }
  if (build) {
    for (const id of build.slice(1).split('.')) if (!IDENT.test(id)) return null;
  }
  return { major, minor: minor ?? '0', patch: patch ?? '0', prerelease: pre, build, full: patch !== undefined };
}

export const isValidSemver = (v: string): boolean => parseSemver(v) !== null;

/** The canonical form the go command requires of a proxy: vX.Y.Z[-pre], build metadata dropped except +incompatible. */
export function canonical(v: string): string | null {
  const p = parseSemver(v);
  if (!p) return null;
  const base = `v${p.major}.${p.minor}.${p.patch}${p.prerelease}`;
  return p.build === '+incompatible' ? base + p.build : base;
}

export function major(v: string): string {
  const p = parseSemver(v);
  return p ? `v${p.major}` : '';
}

export const prerelease = (v: string): string => parseSemver(v)?.prerelease ?? '';
export const build = (v: string): string => parseSemver(v)?.build ?? '';

function cmpNum(a: string, b: string): number {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function cmpPrerelease(a: string, b: string): number {
  if (a === b) return 0;
  if (a === '') return 1; // a release sorts after its prereleases
  if (b === '') return -1;
  const x = a.slice(1).split('.');
  const y = b.slice(1).split('.');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] === y[i]) continue;
    const xn = /^[0-9]+$/.test(x[i]);
    const yn = /^[0-9]+$/.test(y[i]);
    if (xn && yn) return cmpNum(x[i], y[i]);
    if (xn) return -1;
    if (yn) return 1;
    return x[i] < y[i] ? -1 : 1;
  }
  return x.length === y.length ? 0 : x.length < y.length ? -1 : 1;
}

/** semver.Compare: invalid versions sort before valid ones and equal to each other; build metadata is ignored. */
export function compareSemver(a: string, b: string): number {
  const x = parseSemver(a);
  const y = parseSemver(b);
  if (!x || !y) return x ? 1 : y ? -1 : 0;
  return cmpNum(x.major, y.major) || cmpNum(x.minor, y.minor) || cmpNum(x.patch, y.patch) || cmpPrerelease(x.prerelease, y.prerelease);
}

/** module.IsPseudoVersion: the form `go` gives untagged commits (vX.0.0-yyyymmddhhmmss-abcdef123456 and kin). */
const PSEUDO = /^v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)\d{14}-[A-Za-z0-9]+(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;
export function isPseudoVersion(v: string): boolean {
  return (v.match(/-/g)?.length ?? 0) >= 2 && prerelease(v) !== '' && PSEUDO.test(v);
}
