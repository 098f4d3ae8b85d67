/**
 * What a path in a Maven repository means (https://maven.apache.org/repositories/layout.html):
 *   <group as dirs>/<artifactId>/<version>/<artifactId>-<version>[-<classifier>].<extension>
 * plus `maven-metadata.xml` at group, artifact and (SNAPSHOT) version level, and a checksum suffix on any file.
 * Pure functions, no I/O: the rest of the format asks these what a request is about.
 */
import { GranaryError } from '../../server/errors.ts';

export const CHECKSUM_ALGOS = ['md5', 'sha1', 'sha256', 'sha512'] as const;
export type ChecksumAlgo = (typeof CHECKSUM_ALGOS)[number];
/** Hex length of each algorithm's digest: an uploaded checksum of another length is malformed. */
export const CHECKSUM_HEX_LENGTH: Record<ChecksumAlgo, number> = { md5: 32, sha1: 40, sha256: 64, sha512: 128 };

export const METADATA_FILE = 'maven-metadata.xml';

/**
 * A repository path: no empty, "." or ".." segment (path traversal), no backslash or control character.
 * A trailing slash is allowed and reported (directory browsing); the empty path is the repository root.
 */
export function validatePath(raw: string): { path: string; dir: boolean } {
  const dir = raw === '' || raw.endsWith('/');
  const path = raw.replace(/\/+$/, '');
  if (path.length > 1024) throw new GranaryError('BAD_REQUEST', 'path is longer than 1024 characters');
  if (/[\\\x00-\x1f\x7f]/.test(path)) throw new GranaryError('BAD_REQUEST', 'path contains a forbidden character');
  if (path !== '') {
    for (const seg of path.split('/')) {
      if (seg === '' || seg === '.' || seg === '..') throw new GranaryError('BAD_REQUEST', `path segment ${JSON.stringify(seg)} is not allowed`);
    }
  }
  return { path, dir };
}

/** `x.jar.sha1` → { base: 'x.jar', algo: 'sha1' }; null when the path is not a checksum file. */
export function splitChecksum(path: string): { base: string; algo: ChecksumAlgo } | null {
  const dot = path.lastIndexOf('.');
  if (dot <= 0) return null;
  const ext = path.slice(dot + 1);
  if (!(CHECKSUM_ALGOS as readonly string[]).includes(ext)) return null;
  return { base: path.slice(0, dot), algo: ext as ChecksumAlgo };
}

export const isMetadataPath = (path: string): boolean => path === METADATA_FILE || path.endsWith(`/${METADATA_FILE}`);
export const isSnapshotVersion = (v: string): boolean => v.endsWith('-SNAPSHOT');

/** `20261123.135819-1` inside a unique SNAPSHOT file name. */
const TIMESTAMP_BUILD = /^(\d{8}\.\d{6})-(\d+)$/;

export interface ArtifactFile {
  groupPath: string;
  artifactId: string;
  /** The directory's version: `1.0` or `1.0-SNAPSHOT`. */
  baseVersion: string;
  /** The version in the file name: `1.0`, `1.0-SNAPSHOT` or `1.0-20261123.135819-1`. */
  version: string;
  classifier: string;
  extension: string;
  /** For a timestamped SNAPSHOT file. */
  timestamp?: string;
  buildNumber?: number;
}

/**
 * Parses `g/r/o/u/p/artifactId/version/file`; null when the file name does not follow the layout (such files
 * are stored, but take no part in metadata, policy or retention).
 */
export function parseArtifactPath(path: string): ArtifactFile | null {
  const segs = path.split('/');
  if (segs.length < 3) return null;
  const file = segs[segs.length - 1];
  const baseVersion = segs[segs.length - 2];
  const artifactId = segs[segs.length - 3];
  const groupPath = segs.slice(0, -3).join('/');
  if (!file.startsWith(`${artifactId}-`)) return null;
  const rest = file.slice(artifactId.length + 1);
  let version: string;
  let timestamp: string | undefined;
  let buildNumber: number | undefined;
  if (rest.startsWith(baseVersion) && /^[.-]/.test(rest.slice(baseVersion.length))) {
    version = baseVersion;
  } else if (isSnapshotVersion(baseVersion)) {
    // 1.0-SNAPSHOT → 1.0-<yyyyMMdd.HHmmss>-<build>
    const stem = baseVersion.slice(0, -'SNAPSHOT'.length);
    if (!rest.startsWith(stem)) return null;
    const m = /^(\d{8}\.\d{6}-\d+)(?=[.-])/.exec(rest.slice(stem.length));
    if (!m) return null;
    version = stem + m[1];
    const tb = TIMESTAMP_BUILD.exec(m[1])!;
    timestamp = tb[1];
    buildNumber = Number(tb[2]);
  } else {
    return null;
  }
  let tail = rest.slice(version.length);
  let classifier = '';
  if (tail.startsWith('-')) {
    const dot = tail.indexOf('.');
    if (dot < 0) return null;
    classifier = tail.slice(1, dot);
    tail = tail.slice(dot);
    if (!classifier) return null;
  }
  if (!tail.startsWith('.') || tail.length < 2) return null;
  return { groupPath, artifactId, baseVersion, version, classifier, extension: tail.slice(1), timestamp, buildNumber };
}

/** Which kind of `maven-metadata.xml` a directory may hold, judged from the path alone. */
export function metadataDir(path: string): { dir: string; snapshotVersionDir: boolean } {
  const dir = path === METADATA_FILE ? '' : path.slice(0, -(METADATA_FILE.length + 1));
  const last = dir.split('/').pop() ?? '';
  return { dir, snapshotVersionDir: dir.split('/').length >= 3 && isSnapshotVersion(last) };
}

/** Media type by extension (clients ignore it; browsers and curl users do not). */
export function mediaTypeOf(path: string): string {
  if (splitChecksum(path)) return 'text/plain; charset=utf-8';
  if (/\.(pom|xml)$/.test(path)) return 'application/xml';
  if (/\.(jar|war|ear)$/.test(path)) return 'application/java-archive';
  if (/\.(asc)$/.test(path)) return 'application/pgp-signature';
  if (/\.(module|json)$/.test(path)) return 'application/json';
  return 'application/octet-stream';
}
