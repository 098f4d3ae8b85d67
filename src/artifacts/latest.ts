/**
 * "Latest compatible" ordering of typed artifacts: highest ABI first (`abi` metadata, a number or numeric string),
 * then the semver-newest `version`, then the newest upload. Assets missing a key sort after those that have it.
 */
import type { Asset } from '../meta/assets.ts';

function abiOf(a: Asset): number | null {
  const v = a.metadata.abi;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
  return Number.isFinite(n) ? n : null;
}

const SEMVER = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

/** semver 2.0 precedence; null when either is not a version (build metadata ignored). */
export function compareSemver(a: string, b: string): number | null {
  const x = SEMVER.exec(a.trim());
  const y = SEMVER.exec(b.trim());
  if (!x || !y) return null;
  for (let i = 1; i <= 3; i++) {
    const d = Number(x[i]) - Number(y[i]);
    if (d !== 0) return Math.sign(d);
  }
  const pa = x[4];
  const pb = y[4];
  if (pa === undefined || pb === undefined) return pa === pb ? 0 : pa === undefined ? 1 : -1;
  const sa = pa.split('.');
  const sb = pb.split('.');
  for (let i = 0; i < Math.max(sa.length, sb.length); i++) {
    if (sa[i] === undefined) return -1;
    if (sb[i] === undefined) return 1;
    const na = /^\d+$/.test(sa[i]);
    const nb = /^\d+$/.test(sb[i]);
    if (na && nb) {
      const d = Number(sa[i]) - Number(sb[i]);
      if (d !== 0) return Math.sign(d);
    } else if (na !== nb) return na ? -1 : 1;
    else if (sa[i] !== sb[i]) return sa[i] < sb[i] ? -1 : 1;
  }
  return 0;
}

function versionOf(a: Asset): string | null {
  const v = a.metadata.version;
  return typeof v === 'string' || typeof v === 'number' ? String(v) : null;
}

/** Negative when `a` is the better ("later") candidate — use with Array.sort to put the latest first. */
export function byLatest(a: Asset, b: Asset): number {
  const aa = abiOf(a);
  const ab = abiOf(b);
  if (aa !== ab) return aa === null ? 1 : ab === null ? -1 : ab - aa;
  const va = versionOf(a);
  const vb = versionOf(b);
  if (va !== vb) {
    if (va === null) return 1;
    if (vb === null) return -1;
    const c = compareSemver(va, vb);
    if (c === null) {
      const ok = (v: string) => SEMVER.test(v.trim());
      if (ok(va) !== ok(vb)) return ok(va) ? -1 : 1;
    } else if (c !== 0) return -c;
  }
  if (a.updatedAt !== b.updatedAt) return a.updatedAt < b.updatedAt ? 1 : -1;
  return b.id - a.id;
}
