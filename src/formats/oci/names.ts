/**
 * OCI names: repository names, tags, digests, references, and the `/v2/` URL path splitter.
 *
 * Grammar from distribution-spec v1.1 ("Pulling manifests"):
 *   name  `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
 *   tag   `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
 * Digests from image-spec v1.1 descriptor.md: `algorithm ":" encoded`; sha256 encoded MUST be `[a-f0-9]{64}`,
 * sha512 `[a-f0-9]{128}`. Only those two are accepted: the blob store can verify nothing else.
 */
import { OciError } from './errors.ts';

/**
 * Longest name accepted. The v1.1 spec only notes that many clients cap `host[:port]/name` at 255 characters;
 * CNCF Distribution rejects names over 255 (reference.NameTotalLengthMax), and so do we.
 */
export const NAME_MAX_LENGTH = 255;
export const TAG_MAX_LENGTH = 128;

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
/** The general digest grammar of descriptor.md, used only to tell "malformed" from "unsupported algorithm". */
const DIGEST_GRAMMAR_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export function isValidName(name: string): boolean {
  return name.length > 0 && name.length <= NAME_MAX_LENGTH && NAME_RE.test(name);
}

/** Throws NAME_INVALID (400) with a reason in `detail`. */
export function assertValidName(name: string): void {
  if (isValidName(name)) return;
  let reason = 'does not match the repository name grammar';
  if (name.length === 0) reason = 'is empty';
  else if (name.length > NAME_MAX_LENGTH) reason = `is longer than ${NAME_MAX_LENGTH} characters`;
  else if (/[A-Z]/.test(name)) reason = 'contains upper-case letters';
  else if (name.split('/').some((c) => c === '')) reason = 'has an empty path component';
  else if (name.split('/').some((c) => c === '.' || c === '..')) reason = 'has a "." or ".." path component';
  throw new OciError('NAME_INVALID', `invalid repository name: ${reason}`, { name });
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/** `sha256:<64 lower hex>` or `sha512:<128 lower hex>`. */
export function isValidDigest(digest: string): boolean {
  return DIGEST_RE.test(digest);
}

/**
 * Digest that matches the descriptor.md grammar but names an algorithm other than sha256/sha512, e.g.
 * `sha384:…` or `multihash+base58:…`. (A sha256/sha512 digest with the wrong length or upper-case hex is
 * malformed, not unsupported: descriptor.md pins their encoding to lower-case hex of fixed length.)
 */
export function isWellFormedButUnsupportedDigest(digest: string): boolean {
  if (isValidDigest(digest) || !DIGEST_GRAMMAR_RE.test(digest)) return false;
  const alg = digest.slice(0, digest.indexOf(':'));
  return alg !== 'sha256' && alg !== 'sha512';
}

/** Throws DIGEST_INVALID (400) unless the digest is a valid sha256/sha512 digest. */
export function assertValidDigest(digest: string): void {
  if (isValidDigest(digest)) return;
  const reason = isWellFormedButUnsupportedDigest(digest) ? 'unsupported digest algorithm or encoding' : 'malformed digest';
  throw new OciError('DIGEST_INVALID', `invalid digest: ${reason}`, { digest });
}

export type Reference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: string };

/**
 * A manifest `<reference>`: a tag or a digest, "MUST NOT be in any other format". Returns null otherwise; the
 * route picks the error (MANIFEST_UNKNOWN 404 on GET/HEAD/DELETE, MANIFEST_INVALID 400 on PUT — Distribution
 * simply answers 404 because its router does not match).
 * A string containing ':' is only ever a digest (tags cannot contain ':').
 */
export function parseReference(ref: string): Reference | null {
  if (ref.includes(':')) return isValidDigest(ref) ? { kind: 'digest', digest: ref } : null;
  return isValidTag(ref) ? { kind: 'tag', tag: ref } : null;
}

/**
 * The tag of the "referrers tag schema" (`<alg>-<ref>`, ref truncated to 64 characters) that pre-1.1 clients
 * maintain for a subject digest; used when enabling the referrers API over existing content.
 */
export function referrersTagFor(subjectDigest: string): string {
  assertValidDigest(subjectDigest);
  const [alg, hex] = subjectDigest.split(':');
  return `${alg}-${hex.slice(0, 64)}`;
}

export type V2Kind = 'manifests' | 'blobs' | 'blobs/uploads' | 'tags/list' | 'referrers';

export interface V2Path {
  name: string;
  kind: V2Kind;
  /**
   * What follows the endpoint keyword, URL-decoded: the reference (manifests), digest (blobs, referrers),
   * upload session id (blobs/uploads; '' for `POST …/blobs/uploads/`), or '' (tags/list). Not validated here.
   */
  rest: string;
}

/**
 * Splits the path after `/v2/` (no leading slash; a query string is cut off) into name, endpoint and rest.
 *
 * Names may contain `/` and even segments spelled like endpoint keywords (`a/blobs/b`, `x/manifests`), so the
 * endpoint is recognised by the path's last segments — i.e. the LAST occurrence of the keyword — as CNCF
 * Distribution's router does with its greedy `{name}` pattern:
 *   `<name>/tags/list`, `<name>/manifests/<ref>`, `<name>/referrers/<digest>`,
 *   `<name>/blobs/uploads/` (also without the trailing slash), `<name>/blobs/uploads/<id>`, `<name>/blobs/<digest>`.
 * Checked in that order; e.g. `a/blobs/uploads` is an upload start for `a`, never blob "uploads" of `a`.
 *
 * Returns null when no endpoint matches (→ 404; `/v2/` itself and `/v2/_catalog` are the caller's).
 * Throws NAME_INVALID when an endpoint matches but the name is invalid (upper case, `..`, empty segment, …).
 * Percent-escapes are decoded first (Distribution matches on the decoded path); a bad escape gives null.
 */
export function splitV2Path(path: string): V2Path | null {
  const q = path.indexOf('?');
  let raw = q >= 0 ? path.slice(0, q) : path;
  if (raw.startsWith('/')) raw = raw.slice(1);
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return null;
  }
  const segs = decoded.split('/');
  const n = segs.length;
  const at = (i: number): string | undefined => (i >= 0 && i < n ? segs[i] : undefined);
  const nameOf = (count: number): string => segs.slice(0, n - count).join('/');

  let match: { drop: number; kind: V2Kind; rest: string } | null = null;
  if (at(n - 2) === 'tags' && at(n - 1) === 'list') {
    match = { drop: 2, kind: 'tags/list', rest: '' };
  } else if (at(n - 2) === 'manifests') {
    match = { drop: 2, kind: 'manifests', rest: segs[n - 1] };
  } else if (at(n - 2) === 'referrers') {
    match = { drop: 2, kind: 'referrers', rest: segs[n - 1] };
  } else if (at(n - 3) === 'blobs' && at(n - 2) === 'uploads' && at(n - 1) === '') {
    match = { drop: 3, kind: 'blobs/uploads', rest: '' };
  } else if (at(n - 2) === 'blobs' && at(n - 1) === 'uploads') {
    match = { drop: 2, kind: 'blobs/uploads', rest: '' };
  } else if (at(n - 3) === 'blobs' && at(n - 2) === 'uploads') {
    match = { drop: 3, kind: 'blobs/uploads', rest: segs[n - 1] };
  } else if (at(n - 2) === 'blobs') {
    match = { drop: 2, kind: 'blobs', rest: segs[n - 1] };
  }
  if (match === null) return null;
  // An endpoint needs something in front of it and, except for upload starts and tags/list, a non-empty rest.
  if (n - match.drop < 1) return null;
  if (match.rest === '' && match.kind !== 'blobs/uploads' && match.kind !== 'tags/list') return null;
  const name = nameOf(match.drop);
  assertValidName(name);
  return { name, kind: match.kind, rest: match.rest };
}
