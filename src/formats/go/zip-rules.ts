/**
 * The module-zip rules of golang.org/x/mod/zip, shared by the server (checking an uploaded zip) and
 * `granary go publish` (building one from a directory): size limits, which files a zip omits, and the
 * case-folding collision check. Keeping them in one place means the CLI never builds a zip the server refuses.
 */

/** zip.MaxZipFile: the zip itself and the total uncompressed size of its files. */
export const MAX_ZIP_FILE = 500 << 20;
/** zip.MaxGoMod */
export const MAX_GO_MOD = 16 << 20;
/** zip.MaxLICENSE */
export const MAX_LICENSE = 16 << 20;

/**
 * Entries per zip — Granary's, not the spec's (which sets only sizes): bounds the memory a hostile zip of tiny
 * entries can make the check hold (names for the collision check), far above real modules.
 */
export const MAX_ENTRIES = 500_000;

/** strings.EqualFold-style key: two paths that fold equal would overwrite each other on a case-insensitive disk. */
const fold = (s: string): string => s.toUpperCase().toLowerCase();

/** zip's collisionChecker: every path and each of its parent directories, folded. */
export class CollisionChecker {
  readonly #seen = new Map<string, { path: string; isDir: boolean }>();

  /** Returns the reason `p` collides with an earlier entry, or null. */
  check(p: string, isDir: boolean): string | null {
    const key = fold(p);
    const other = this.#seen.get(key);
    if (other) {
      if (other.path !== p) return `case-insensitive file name collision: ${JSON.stringify(other.path)} and ${JSON.stringify(p)}`;
      if (other.isDir !== isDir) return `entry ${JSON.stringify(p)} is both a file and a directory`;
      if (!isDir) return `multiple entries for file ${JSON.stringify(p)}`;
      // The same directory again is fine: parents are checked once per file below them.
    } else this.#seen.set(key, { path: p, isDir });
    const slash = p.lastIndexOf('/');
    return slash > 0 ? this.check(p.slice(0, slash), true) : null;
  }
}

/**
 * zip's isVendoredPackage: files of packages under a vendor directory are never part of a module. The offset
 * bug for nested "/vendor/" (golang.org/issue/31562, /37397) is reproduced on purpose: fixing it would change
 * which files are in a zip and so every checksum in go.sum. From go 1.24 on vendor/modules.txt is omitted too.
 */
export function isVendoredPackage(name: string, go124: boolean): boolean {
  let i: number;
  if (name.startsWith('vendor/')) {
    if (go124) return true;
    i = 'vendor/'.length;
  } else if (name.includes('/vendor/')) {
    i = '/vendor/'.length; // sic: x/mod uses this offset from the start of the name
  } else return false;
  return name.slice(i).includes('/');
}

/** Version-control directories CreateFromDir never descends into (below the module root). */
export const VCS_DIRS = new Set(['.bzr', '.git', '.hg', '.svn']);

/** Like path.Clean for the relative, slash-separated names a zip holds: does cleaning leave it unchanged? */
export function isCleanPath(p: string): boolean {
  if (p === '' || p.startsWith('/') || p.endsWith('/') || p.includes('//')) return false;
  return !p.split('/').some((e) => e === '.' || e === '..');
}
