/**
 * HTTP details of the OCI Distribution API that need no server: header names, chunked-upload ranges, blob GET
 * `Range`, tags/catalog pagination with `Link`, Location paths, and the referrers response.
 *
 * Spec: distribution-spec v1.1 ("Pushing a blob in chunks", "Pulling blobs", "Listing Tags",
 * "Listing Referrers"); RFC 9110 §14 for byte ranges; RFC 8288 (ex-5988) for Link.
 */
import { OciError } from './errors.ts';
import type { Descriptor } from './descriptor.ts';
import { MT } from './media-types.ts';

export const HEADERS = {
  /** SHOULD be "registry/2.0" on 200/401 of GET /v2/ (and Distribution sends it on every answer). */
  API_VERSION: 'Docker-Distribution-API-Version',
  CONTENT_DIGEST: 'Docker-Content-Digest',
  UPLOAD_UUID: 'Docker-Upload-UUID',
  OCI_SUBJECT: 'OCI-Subject',
  OCI_FILTERS_APPLIED: 'OCI-Filters-Applied',
  OCI_CHUNK_MIN_LENGTH: 'OCI-Chunk-Min-Length',
} as const;
export const API_VERSION_VALUE = 'registry/2.0';

// ---------------------------------------------------------------------------------------------------------------
// Chunked uploads (PATCH / PUT <location>)

/** An inclusive byte range of an upload chunk. `total` is the `/<total>` of the RFC form, when a number. */
export interface ChunkRange {
  start: number;
  end: number;
  total?: number;
}

const CHUNK_SPEC_RE = /^(\d+)-(\d+)$/;
const CHUNK_RFC_RE = /^bytes[ =](\d+)-(\d+)(?:\/(\d+|\*))?$/i;

/**
 * Parses the Content-Range of a PATCH (or of a closing PUT that carries the last chunk). Accepts the spec form
 * `<start>-<end>` (`^[0-9]+-[0-9]+$`, what docker and containers/image send) and the RFC form
 * `bytes <start>-<end>/<total|*>` (also `bytes=<start>-<end>`, seen from some clients).
 * Malformed → BLOB_UPLOAD_INVALID (400); end < start, or total ≤ end → RANGE_INVALID (416).
 */
export function parseContentRange(header: string): ChunkRange {
  const v = header.trim();
  const m = CHUNK_SPEC_RE.exec(v) ?? CHUNK_RFC_RE.exec(v);
  if (m === null) throw new OciError('BLOB_UPLOAD_INVALID', 'malformed Content-Range', { contentRange: header });
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) {
    throw new OciError('BLOB_UPLOAD_INVALID', 'Content-Range out of bounds', { contentRange: header });
  }
  if (end < start) throw new OciError('RANGE_INVALID', 'Content-Range end is before its start', { contentRange: header });
  const range: ChunkRange = { start, end };
  if (m[3] !== undefined && m[3] !== '*') {
    const total = Number(m[3]);
    if (!Number.isSafeInteger(total) || total <= end) {
      throw new OciError('RANGE_INVALID', 'Content-Range total is not past its end', { contentRange: header });
    }
    range.total = total;
  }
  return range;
}

/**
 * Checks a chunk against the session before appending. Spec: "Chunks MUST be uploaded in order, with the first
 * byte of a chunk being the last chunk's <end-of-range> plus one. If a chunk is uploaded out of order, the
 * registry MUST respond with a 416". So `range.start !== currentSize` → RANGE_INVALID (416); answer it with the
 * upload's `Location` and `Range` so the client can resume. A Content-Length that disagrees with the range →
 * SIZE_INVALID (400). No Content-Range (a streamed PATCH) appends at the current size: nothing to check.
 */
export function checkChunk(range: ChunkRange | undefined, currentSize: number, contentLength?: number): void {
  if (range === undefined) return;
  if (range.start !== currentSize) {
    throw new OciError('RANGE_INVALID', `chunk must start at byte ${currentSize}`, { expectedStart: currentSize, start: range.start });
  }
  if (contentLength !== undefined && contentLength !== range.end - range.start + 1) {
    throw new OciError('SIZE_INVALID', 'Content-Length does not match Content-Range', {
      contentLength,
      rangeLength: range.end - range.start + 1,
    });
  }
}

/**
 * The `Range: 0-<end-of-range>` header of 202 (POST/PATCH) and 204 (GET upload status) answers: `0-<size-1>`.
 * An empty session gives `0-0`, as CNCF Distribution does — the form cannot express "nothing yet", and `0--1`
 * breaks docker's parser (`^([0-9]+)-([0-9]+)$`). Clients resume from `<end>+1` only after a chunk was sent.
 */
export function formatUploadRange(size: number): string {
  return `0-${Math.max(size - 1, 0)}`;
}

/** Client side of the above (tests, replication): `0-<end>` → { start, end }, or null when malformed. */
export function parseUploadRange(header: string | undefined): { start: number; end: number } | null {
  if (header === undefined) return null;
  const m = /^(?:bytes=)?(\d+)-(\d+)$/.exec(header.trim());
  if (m === null) return null;
  return { start: Number(m[1]), end: Number(m[2]) };
}

// ---------------------------------------------------------------------------------------------------------------
// Blob GET with Range (RFC 9110 §14)

export type BlobRange =
  /** No (usable) Range: send 200 with the whole blob. */
  | { kind: 'full' }
  /** 206 with `Content-Range` and `Content-Length: length`; `start`/`end` inclusive, fit BlobStore.open's range. */
  | { kind: 'partial'; start: number; end: number; length: number; contentRange: string }
  /** 416 with `Content-Range: bytes *\/<size>` and no body. */
  | { kind: 'unsatisfiable'; contentRange: string };

/**
 * Interprets a blob GET's `Range` for a blob of `size` bytes. One range only: `bytes=a-b` (end clamped to the
 * size), `bytes=a-` (open), `bytes=-n` (suffix: the last n bytes). Per RFC 9110 a server MAY ignore Range, and
 * we do (→ 'full') for other units, invalid syntax (e.g. b < a), multiple ranges, and a zero-length blob.
 * A first byte at or past the end, or a suffix of 0, is unsatisfiable (→ 416). The route should also send
 * `Accept-Ranges: bytes`, and honour `If-Range` (serve 'full' when it does not match the digest ETag).
 */
export function parseRangeHeader(header: string | undefined, size: number): BlobRange {
  if (header === undefined) return { kind: 'full' };
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (m === null) return { kind: 'full' };
  const specs = m[1].split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (specs.length !== 1) return { kind: 'full' };
  const r = /^(\d*)-(\d*)$/.exec(specs[0]);
  if (r === null || (r[1] === '' && r[2] === '')) return { kind: 'full' };
  if (size <= 0) return { kind: 'full' };
  const unsatisfiable: BlobRange = { kind: 'unsatisfiable', contentRange: `bytes */${size}` };
  let start: number;
  let end: number;
  if (r[1] === '') {
    const suffix = Number(r[2]);
    if (suffix === 0) return unsatisfiable;
    start = Math.max(size - suffix, 0);
    end = size - 1;
  } else {
    start = Number(r[1]);
    if (r[2] !== '' && Number(r[2]) < start) return { kind: 'full' };
    if (start >= size) return unsatisfiable;
    end = r[2] === '' ? size - 1 : Math.min(Number(r[2]), size - 1);
  }
  return { kind: 'partial', start, end, length: end - start + 1, contentRange: `bytes ${start}-${end}/${size}` };
}

// ---------------------------------------------------------------------------------------------------------------
// Pagination of tags/list and _catalog

export interface PageRequest {
  /** Requested page size; undefined = all (up to the route's cap). */
  n?: number;
  /** Exclusive lower bound: the last tag (or repository) of the previous page. */
  last?: string;
}

function firstString(v: unknown): string | undefined {
  if (Array.isArray(v)) return firstString(v[0]);
  return typeof v === 'string' ? v : undefined;
}

/**
 * Reads `n` and `last` from a parsed query (string or repeated → first value, as Go's Query().Get does).
 * `n` must be a non-negative integer → else PAGINATION_NUMBER_INVALID (400). An empty `last` is absent.
 */
export function parsePagination(query: { n?: unknown; last?: unknown }): PageRequest {
  const out: PageRequest = {};
  const n = firstString(query.n);
  if (n !== undefined && n !== '') {
    if (!/^\d+$/.test(n) || !Number.isSafeInteger(Number(n))) {
      throw new OciError('PAGINATION_NUMBER_INVALID', 'n must be a non-negative integer', { n });
    }
    out.n = Number(n);
  }
  const last = firstString(query.last);
  if (last !== undefined && last !== '') out.last = last;
  return out;
}

/**
 * Tag order. Spec: "the tags MUST be in lexical order (i.e. case-insensitive alphanumeric order)". Compared
 * case-insensitively, ties broken by code units so the order is total and `last` is unambiguous (`A` < `a`).
 * The metadata query must sort the same way (e.g. ORDER BY lower(tag), tag — with a C/binary collation).
 */
export function compareTags(a: string, b: string): number {
  const la = a.toLowerCase();
  const lb = b.toLowerCase();
  if (la !== lb) return la < lb ? -1 : 1;
  return a === b ? 0 : a < b ? -1 : 1;
}

export interface Page<T> {
  items: T[];
  /** Present when more items follow: the request for the next page (feed it to `linkHeader`). */
  next?: { n: number; last: string };
}

/**
 * One page of an already sorted list (`compare` must be the order it is sorted in). Spec rules:
 * n = 0 → empty list and no Link; the page holds n items unless the list ends or a Link is given, so capping
 * n at `maxN` is allowed because we then give a Link. Without n, the whole rest of the list (up to `maxN`).
 */
export function paginate(
  sorted: readonly string[],
  req: PageRequest,
  opts: { maxN?: number; compare?: (a: string, b: string) => number } = {},
): Page<string> {
  if (req.n === 0) return { items: [] };
  const compare = opts.compare ?? compareTags;
  let from = 0;
  if (req.last !== undefined) {
    const last = req.last;
    from = sorted.findIndex((s) => compare(s, last) > 0);
    if (from < 0) return { items: [] };
  }
  const want = Math.min(req.n ?? Number.POSITIVE_INFINITY, opts.maxN ?? Number.POSITIVE_INFINITY);
  const items = sorted.slice(from, from + (Number.isFinite(want) ? want : sorted.length));
  const page: Page<string> = { items };
  if (from + items.length < sorted.length && items.length > 0) {
    page.next = { n: items.length, last: items[items.length - 1] };
  }
  return page;
}

/**
 * `Link: <path?n=N&last=L>; rel="next"` (RFC 8288; a relative reference, as Distribution sends; skopeo, docker
 * and containerd resolve it against the request URL). `path` is the endpoint, e.g. `/v2/<name>/tags/list`.
 */
export function linkHeader(path: string, next: { n: number; last: string }): string {
  return `<${path}?n=${next.n}&last=${encodeURIComponent(next.last)}>; rel="next"`;
}

// ---------------------------------------------------------------------------------------------------------------
// Locations

/** Location of an upload session (202 answers of POST/PATCH, 204 of GET status). */
export function uploadLocation(name: string, sessionId: string): string {
  return `/v2/${name}/blobs/uploads/${sessionId}`;
}

/** Location of a blob (201 answers of the closing PUT, single POST and mount). */
export function blobLocation(name: string, digest: string): string {
  return `/v2/${name}/blobs/${digest}`;
}

/** Location of a manifest (201 answer of PUT /manifests/<ref>): always by digest. */
export function manifestLocation(name: string, digest: string): string {
  return `/v2/${name}/manifests/${digest}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Referrers

export interface ImageIndexJson {
  schemaVersion: 2;
  mediaType: typeof MT.OCI_INDEX;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ReferrersFilter {
  /** `?artifactType=` (repeated → any of them). */
  artifactType?: string | readonly string[];
}

/**
 * The body of GET /v2/<name>/referrers/<digest>: an OCI image index (Content-Type OCI index) whose manifests are
 * the referrer descriptors (see `referrerDescriptor`), deduplicated by digest, in the given order. With an
 * artifactType filter, only matching descriptors are kept and `filtersApplied` is "artifactType", to send as
 * `OCI-Filters-Applied`. No referrers → an empty `manifests` array (the spec: 200, never 404).
 */
export function buildReferrersIndex(
  descriptors: readonly Descriptor[],
  filter: ReferrersFilter = {},
): { index: ImageIndexJson; filtersApplied?: string } {
  const wanted =
    filter.artifactType === undefined
      ? []
      : (typeof filter.artifactType === 'string' ? [filter.artifactType] : [...filter.artifactType]).filter((t) => t !== '');
  const seen = new Set<string>();
  const manifests: Descriptor[] = [];
  for (const d of descriptors) {
    if (seen.has(d.digest)) continue;
    if (wanted.length > 0 && (d.artifactType === undefined || !wanted.includes(d.artifactType))) continue;
    seen.add(d.digest);
    manifests.push(d);
  }
  const index: ImageIndexJson = { schemaVersion: 2, mediaType: MT.OCI_INDEX, manifests };
  return wanted.length > 0 ? { index, filtersApplied: 'artifactType' } : { index };
}
