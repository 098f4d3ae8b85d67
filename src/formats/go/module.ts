/**
 * Module paths, versions and file paths by the rules of golang.org/x/mod/module: what the `go` command accepts,
 * so a published module is one `go` can download, and the `!`-case-encoding the GOPROXY protocol puts in URLs
 * (module caches live on case-insensitive file systems too, hence "!a" for "A").
 */
import { GranaryError } from '../../server/errors.ts';
import { canonical, isPseudoVersion, major, parseSemver } from './semver.ts';

const bad = (message: string) => new GranaryError('BAD_REQUEST', message);

/** module.EscapePath / EscapeVersion: each upper-case letter becomes "!" + its lower case. */
export function escapeCase(s: string): string {
  return s.replace(/[A-Z]/g, (c) => '!' + c.toLowerCase());
}

/** module.UnescapePath: "!x" → "X"; a bare upper-case letter or "!" not before a–z is invalid (null). */
export function unescapeCase(s: string): string | null {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c >= 'A' && c <= 'Z') return null;
    if (c === '!') {
      const n = s[i + 1];
      if (n === undefined || n < 'a' || n > 'z') return null;
      out += n.toUpperCase();
      i++;
    } else out += c;
  }
  return out;
}

const BAD_WINDOWS = ['CON', 'PRN', 'AUX', 'NUL', 'COM1', 'COM2', 'COM3', 'COM4', 'COM5', 'COM6', 'COM7', 'COM8', 'COM9', 'LPT1', 'LPT2', 'LPT3', 'LPT4', 'LPT5', 'LPT6', 'LPT7', 'LPT8', 'LPT9'];

type PathKind = 'module' | 'file';

function charOk(c: string, kind: PathKind): boolean {
  const cp = c.codePointAt(0)!;
  if (cp < 0x80) {
    if (/[A-Za-z0-9]/.test(c)) return true;
    if (kind === 'module') return '-._~'.includes(c);
    return "!#$%&()+,-.=@[]^_{}~ ".includes(c);
  }
  // Non-ASCII: letters only, and only in file paths (module paths are ASCII).
  return kind === 'file' && /\p{L}/u.test(c);
}

function checkElem(elem: string, kind: PathKind): string | null {
  if (elem === '') return 'empty path element';
  if (elem === '.' || elem === '..') return `invalid path element ${JSON.stringify(elem)}`;
  if (elem[0] === '.' && kind === 'module') return 'leading dot in path element';
  if (elem.endsWith('.')) return 'trailing dot in path element';
  for (const c of elem) if (!charOk(c, kind)) return `invalid char ${JSON.stringify(c)}`;
  const short = elem.includes('.') ? elem.slice(0, elem.indexOf('.')) : elem;
  if (BAD_WINDOWS.some((b) => b.toLowerCase() === short.toLowerCase())) return `${JSON.stringify(short)} disallowed as path element component on Windows`;
  // Windows short names (GIT~1) could alias another element; file names are exempt, as in x/mod.
  if (kind !== 'file' && /~[0-9]+$/.test(short)) return 'trailing tilde and digits in path element';
  return null;
}

function checkPathElems(path: string, kind: PathKind): string | null {
  if (path === '') return 'empty string';
  if (path.startsWith('-') && kind !== 'file') return 'leading dash';
  if (path.includes('//')) return 'double slash';
  if (path.endsWith('/')) return 'trailing slash';
  if (path.startsWith('/')) return 'leading slash';
  for (const e of path.split('/')) {
    const err = checkElem(e, kind);
    if (err) return err;
  }
  return null;
}

/** module.CheckFilePath: a path inside a module zip. Returns the reason it is invalid, or null. */
export function checkFilePath(path: string): string | null {
  return checkPathElems(path, 'file');
}

/**
 * module.SplitPathVersion: "example.com/m/v2" → ["example.com/m", "/v2"]; gopkg.in paths use ".vN".
 * null when the suffix is malformed (/v0, /v1, /v02).
 */
export function splitPathVersion(path: string): { prefix: string; pathMajor: string } | null {
  if (path.startsWith('gopkg.in/')) {
    const m = /^(.*)\.(v(?:0|[1-9][0-9]*))(-unstable)?$/.exec(path);
    if (!m) return null;
    return { prefix: m[1], pathMajor: `.${m[2]}${m[3] ?? ''}` };
  }
  const m = /^(.*?)\/(v[0-9]+)$/.exec(path);
  if (!m || m[1] === '' || m[1].endsWith('/')) return { prefix: path, pathMajor: '' };
  if (m[2] === 'v0' || m[2] === 'v1' || m[2].startsWith('v0')) return null;
  return { prefix: m[1], pathMajor: '/' + m[2] };
}

/** module.CheckPath: a valid module path (first element a lower-case domain-like name with a dot). */
export function checkModulePath(path: string): string | null {
  const err = checkPathElems(path, 'module');
  if (err) return err;
  const first = path.split('/')[0];
  if (!first.includes('.')) return 'missing dot in first path element';
  if (first.startsWith('-')) return 'leading dash in first path element';
  if (!/^[a-z0-9.-]+$/.test(first)) return `invalid char in first path element ${JSON.stringify(first)}`;
  if (!splitPathVersion(path)) return 'invalid version suffix';
  return null;
}

/** module.CheckPathMajor: the version's major must match the path's /vN (or be v0/v1, or +incompatible, without one). */
export function checkPathMajor(version: string, pathMajor: string): string | null {
  let pm = pathMajor;
  if (pm.startsWith('.v') && pm.endsWith('-unstable')) pm = pm.slice(0, -'-unstable'.length);
  if (version.startsWith('v0.0.0-') && pm === '.v1') return null;
  const m = major(version);
  if (pm === '') {
    if (m === 'v0' || m === 'v1' || version.endsWith('+incompatible')) return null;
    return `should be v0 or v1, not ${m}`;
  }
  if (pm.slice(1) === m) return null;
  return `should be ${pm.slice(1)}, not ${m}`;
}

export interface ModuleVersion {
  path: string;
  version: string;
}

/**
 * Validates a module path and version as a proxy must before serving or storing them: valid path, canonical
 * semantic version matching the major-version suffix, +incompatible only where Go allows it.
 */
export function checkModuleVersion(path: string, version: string): void {
  const pErr = checkModulePath(path);
  if (pErr) throw bad(`malformed module path ${JSON.stringify(path)}: ${pErr}`);
  const sv = parseSemver(version);
  if (!sv) throw bad(`${path}@${version}: invalid version: not a semantic version`);
  if (canonical(version) !== version) throw bad(`${path}@${version}: invalid version: not a canonical version (use ${canonical(version)})`);
  const { pathMajor } = splitPathVersion(path)!;
  const mErr = checkPathMajor(version, pathMajor);
  if (mErr) throw bad(`${path}@${version}: invalid version: ${mErr}`);
  if (sv.build === '+incompatible') {
    if (pathMajor !== '') throw bad(`${path}@${version}: invalid version: +incompatible suffix not allowed on a path with a major version suffix`);
    if (Number(sv.major) < 2) throw bad(`${path}@${version}: invalid version: +incompatible suffix not allowed: major version ${major(version)} is compatible`);
  }
}

export { isPseudoVersion };

/**
 * The module path and file named by a GOPROXY URL path (after /go/<repo>/): `<escaped module>/@v/list`,
 * `/@v/<escaped version>.info|.mod|.zip` or `/@latest`. null when it is none of these.
 */
export type GoRequest =
  | { module: string; escaped: string; file: 'list' }
  | { module: string; escaped: string; file: 'latest' }
  | { module: string; escaped: string; file: 'info' | 'mod' | 'zip'; version: string };

export function parseRequestPath(rest: string): GoRequest | null {
  let escaped: string;
  let tail: string;
  if (rest.endsWith('/@latest')) {
    escaped = rest.slice(0, -'/@latest'.length);
    tail = '@latest';
  } else {
    const i = rest.lastIndexOf('/@v/');
    if (i < 0) return null;
    escaped = rest.slice(0, i);
    tail = rest.slice(i + 4);
  }
  const module = unescapeCase(escaped);
  if (module === null) throw bad(`invalid escaped module path ${JSON.stringify(escaped)}`);
  const pErr = checkModulePath(module);
  if (pErr) throw bad(`malformed module path ${JSON.stringify(module)}: ${pErr}`);
  if (tail === '@latest') return { module, escaped, file: 'latest' };
  if (tail === 'list') return { module, escaped, file: 'list' };
  const m = /^(.+)\.(info|mod|zip)$/.exec(tail);
  if (!m) return null;
  const version = unescapeCase(m[1]);
  if (version === null) throw bad(`invalid escaped version ${JSON.stringify(m[1])}`);
  // As module.EscapeVersion: a version or query is one valid path element — it becomes part of cache and upstream paths.
  if (version.includes('/') || checkFilePath(version) !== null) throw bad(`disallowed version string ${JSON.stringify(version)}`);
  return { module, escaped, file: m[2] as 'info' | 'mod' | 'zip', version };
}
