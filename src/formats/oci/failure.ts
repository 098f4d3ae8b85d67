/**
 * Everything thrown inside the OCI scope becomes the spec's error envelope here, in one place: OCI errors as
 * they are, blob-store errors by type (a digest mismatch is DIGEST_INVALID, an offset clash RANGE_INVALID…),
 * and core GranaryErrors by code, with the endpoint deciding the codes the core cannot know (a missing thing
 * on /blobs is BLOB_UNKNOWN, on /manifests MANIFEST_UNKNOWN).
 */
import {
  BlobNotFoundError,
  DigestMismatchError,
  InvalidDigestError,
  InvalidUploadIdError,
  RangeNotSatisfiableError,
  SizeMismatchError,
  TooLargeError,
  UploadNotFoundError,
  UploadOffsetError,
} from '../../blobs/errors.ts';
import { normalizeError } from '../../server/normalize.ts';
import { OciError, ociErrorsStatus, type OciErrorCode } from './errors.ts';
import type { V2Kind } from './names.ts';

/** Several OCI errors in one answer (e.g. one MANIFEST_BLOB_UNKNOWN per missing blob), and/or extra headers. */
export class OciErrors extends Error {
  readonly errors: OciError[];
  readonly headers: Record<string, string>;
  constructor(errors: OciError[], headers: Record<string, string> = {}) {
    super(errors.map((e) => e.message).join('; '));
    this.name = 'OciErrors';
    this.errors = errors;
    this.headers = headers;
  }
}

export interface OciFailure {
  status: number;
  errors: { code: OciErrorCode | 'UNKNOWN'; message: string; detail?: unknown }[];
  headers: Record<string, string>;
}

const one = (e: OciError, headers: Record<string, string> = {}): OciFailure => ({ status: e.status, errors: [e.toEntry()], headers });

/** What a missing thing is called on each endpoint. */
const UNKNOWN_ON: Record<V2Kind, OciErrorCode> = {
  blobs: 'BLOB_UNKNOWN',
  manifests: 'MANIFEST_UNKNOWN',
  'blobs/uploads': 'BLOB_UPLOAD_UNKNOWN',
  'tags/list': 'NAME_UNKNOWN',
  referrers: 'NAME_UNKNOWN',
};

/** What a malformed request is called on each endpoint. */
const INVALID_ON: Record<V2Kind, OciErrorCode> = {
  blobs: 'DIGEST_INVALID',
  manifests: 'MANIFEST_INVALID',
  'blobs/uploads': 'BLOB_UPLOAD_INVALID',
  'tags/list': 'UNSUPPORTED',
  referrers: 'UNSUPPORTED',
};

export function toOciFailure(err: unknown, kind: V2Kind | undefined): OciFailure {
  if (err instanceof OciErrors) {
    return { status: ociErrorsStatus(err.errors), errors: err.errors.map((e) => e.toEntry()), headers: err.headers };
  }
  if (err instanceof OciError) return one(err);

  // Blob-store errors, by type.
  if (err instanceof DigestMismatchError) {
    return one(new OciError('DIGEST_INVALID', 'provided digest did not match uploaded content', { digest: err.expected, actual: err.actual }));
  }
  if (err instanceof InvalidDigestError) return one(new OciError('DIGEST_INVALID', 'invalid digest', { digest: err.digest }));
  if (err instanceof SizeMismatchError) {
    return one(new OciError('SIZE_INVALID', err.message, { expected: err.expected, actual: err.actual }));
  }
  if (err instanceof TooLargeError) {
    return one(new OciError('SIZE_INVALID', `content exceeds the limit of ${err.maxBytes} bytes`, { limit: err.maxBytes }, 413));
  }
  if (err instanceof UploadNotFoundError || err instanceof InvalidUploadIdError) return one(new OciError('BLOB_UPLOAD_UNKNOWN'));
  if (err instanceof UploadOffsetError) {
    return one(new OciError('RANGE_INVALID', `chunk must start at byte ${err.expected}`, { expectedStart: err.expected, start: err.given }));
  }
  if (err instanceof BlobNotFoundError) return one(new OciError('BLOB_UNKNOWN', undefined, { digest: err.digest }));
  if (err instanceof RangeNotSatisfiableError) {
    return one(new OciError('RANGE_INVALID', err.message, { size: err.size }), { 'content-range': `bytes */${err.size}` });
  }

  // Core errors, by catalogue code.
  const g = normalizeError(err);
  const headers = { ...g.headers };
  const oci = (code: OciErrorCode, status?: number, detail?: unknown) => ({ status: status ?? g.status, errors: [new OciError(code, g.message, detail, status).toEntry()], headers });
  switch (g.code) {
    case 'UNAUTHORIZED':
      return oci('UNAUTHORIZED', 401);
    case 'DENIED':
      return oci('DENIED', 403);
    case 'REPOSITORY_UNKNOWN':
      return oci('NAME_UNKNOWN', 404);
    case 'NOT_FOUND':
      return oci(kind ? UNKNOWN_ON[kind] : 'NAME_UNKNOWN', 404);
    case 'TOO_MANY_REQUESTS':
      return oci('TOOMANYREQUESTS', 429);
    case 'TOO_LARGE':
      return oci('SIZE_INVALID', 413);
    case 'RANGE_NOT_SATISFIABLE':
      return oci('RANGE_INVALID', 416);
    case 'METHOD_NOT_ALLOWED':
      return oci('UNSUPPORTED', 405);
    case 'BAD_REQUEST':
    case 'VALIDATION':
    case 'UNPROCESSABLE':
    case 'CONFLICT':
    case 'GONE':
      return oci(kind ? INVALID_ON[kind] : 'UNSUPPORTED', g.status);
    default:
      // 5xx: the spec's codes are for 4xx answers; Distribution says UNKNOWN, which clients treat as such.
      return { status: g.status, errors: [{ code: 'UNKNOWN', message: g.message }], headers };
  }
}

