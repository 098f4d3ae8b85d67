/**
 * Typed errors of the blob store.
 *
 * Every error carries a stable `code` (what the server's error catalogue maps to a protocol status) and the name
 * of the `driver` that raised it. Drivers throw these without a driver name; `withValidation` (base.ts) fills it
 * in, and wraps stray backend errors (EIO, ENOSPC, SDK errors…) in a plain `BlobStoreError` carrying the cause.
 */

/** Every code a blob store error can carry. */
export const BLOB_ERROR_CODES = {
  BLOB_STORE_ERROR: 'BLOB_STORE_ERROR',
  DIGEST_INVALID: 'DIGEST_INVALID',
  BLOB_UNKNOWN: 'BLOB_UNKNOWN',
  DIGEST_MISMATCH: 'DIGEST_MISMATCH',
  SIZE_MISMATCH: 'SIZE_MISMATCH',
  BLOB_TOO_LARGE: 'BLOB_TOO_LARGE',
  RANGE_NOT_SATISFIABLE: 'RANGE_NOT_SATISFIABLE',
  BLOB_UPLOAD_UNKNOWN: 'BLOB_UPLOAD_UNKNOWN',
  BLOB_UPLOAD_EXISTS: 'BLOB_UPLOAD_EXISTS',
  BLOB_UPLOAD_OFFSET: 'BLOB_UPLOAD_OFFSET',
  BLOB_UPLOAD_ID_INVALID: 'BLOB_UPLOAD_ID_INVALID',
} as const;

export type BlobErrorCode = (typeof BLOB_ERROR_CODES)[keyof typeof BLOB_ERROR_CODES];

export interface BlobErrorOptions {
  driver?: string;
  cause?: unknown;
}

/** Base class; also used as is for backend failures that have no more specific type (code BLOB_STORE_ERROR). */
export class BlobStoreError extends Error {
  readonly code: BlobErrorCode;
  /** Driver that raised the error ("fs", "s3"); set by the driver wrapper when the driver did not. */
  driver: string | undefined;

  constructor(code: BlobErrorCode, message: string, opts: BlobErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.driver = opts.driver;
  }
}

/** Quotes untrusted input in messages without letting it grow them unboundedly. */
function quote(s: unknown): string {
  const text = typeof s === 'string' ? s : String(s);
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

/** The string is not `sha256:<64 hex>` / `sha512:<128 hex>` (lower-case). */
export class InvalidDigestError extends BlobStoreError {
  readonly digest: string;
  constructor(digest: unknown, opts?: BlobErrorOptions) {
    super(BLOB_ERROR_CODES.DIGEST_INVALID, `invalid digest ${quote(digest)}`, opts);
    this.digest = typeof digest === 'string' ? digest.slice(0, 200) : String(digest);
  }
}

export class BlobNotFoundError extends BlobStoreError {
  readonly digest: string;
  constructor(digest: string, opts?: BlobErrorOptions) {
    super(BLOB_ERROR_CODES.BLOB_UNKNOWN, `blob ${digest} not found`, opts);
    this.digest = digest;
  }
}

/** The content does not hash to the digest the caller expected. */
export class DigestMismatchError extends BlobStoreError {
  readonly expected: string;
  readonly actual: string;
  constructor(expected: string, actual: string, opts?: BlobErrorOptions) {
    super(BLOB_ERROR_CODES.DIGEST_MISMATCH, `digest mismatch: expected ${expected}, got ${actual}`, opts);
    this.expected = expected;
    this.actual = actual;
  }
}

/** A different number of bytes arrived than the caller announced. `actual` may be a lower bound when the write
 *  was stopped as soon as it went past `expected`. */
export class SizeMismatchError extends BlobStoreError {
  readonly expected: number;
  readonly actual: number;
  constructor(expected: number, actual: number, opts?: BlobErrorOptions) {
    super(BLOB_ERROR_CODES.SIZE_MISMATCH, `size mismatch: expected ${expected} bytes, got ${actual}`, opts);
    this.expected = expected;
    this.actual = actual;
  }
}

/** More than `maxBytes` arrived; the write was stopped at once. */
export class TooLargeError extends BlobStoreError {
  readonly maxBytes: number;
  constructor(maxBytes: number, opts?: BlobErrorOptions) {
    super(BLOB_ERROR_CODES.BLOB_TOO_LARGE, `content exceeds the limit of ${maxBytes} bytes`, opts);
    this.maxBytes = maxBytes;
  }
}

/** The requested range does not overlap the blob (start ≥ size, end < start, or not non-negative integers). */
export class RangeNotSatisfiableError extends BlobStoreError {
  /** Size of the blob, for `Content-Range: bytes *\/<size>`. */
  readonly size: number;
  constructor(size: number, range?: { start: number; end?: number }, opts?: BlobErrorOptions) {
    const what = range === undefined ? 'range' : `range ${range.start}-${range.end ?? ''}`;
    super(BLOB_ERROR_CODES.RANGE_NOT_SATISFIABLE, `${what} not satisfiable for a blob of ${size} bytes`, opts);
    this.size = size;
  }
}

export class UploadNotFoundError extends BlobStoreError {
  readonly id: string;
  constructor(id: string, opts?: BlobErrorOptions) {
    super(BLOB_ERROR_CODES.BLOB_UPLOAD_UNKNOWN, `upload ${id} not found`, opts);
    this.id = id;
  }
}

export class UploadExistsError extends BlobStoreError {
  readonly id: string;
  constructor(id: string, opts?: BlobErrorOptions) {
    super(BLOB_ERROR_CODES.BLOB_UPLOAD_EXISTS, `upload ${id} already exists`, opts);
    this.id = id;
  }
}

/** An append did not start at the session's current size; nothing was written. */
export class UploadOffsetError extends BlobStoreError {
  /** The session's current size: where the append must start. */
  readonly expected: number;
  readonly given: number;
  readonly id: string | undefined;
  constructor(expected: number, given: number, opts: BlobErrorOptions & { id?: string } = {}) {
    super(
      BLOB_ERROR_CODES.BLOB_UPLOAD_OFFSET,
      `upload${opts.id === undefined ? '' : ` ${opts.id}`} is at offset ${expected}, not ${given}`,
      opts,
    );
    this.expected = expected;
    this.given = given;
    this.id = opts.id;
  }
}

/** The session id does not match /^[A-Za-z0-9_-]{8,128}$/. */
export class InvalidUploadIdError extends BlobStoreError {
  readonly id: string;
  constructor(id: unknown, opts?: BlobErrorOptions) {
    super(BLOB_ERROR_CODES.BLOB_UPLOAD_ID_INVALID, `invalid upload id ${quote(id)}`, opts);
    this.id = typeof id === 'string' ? id.slice(0, 200) : String(id);
  }
}

export function isBlobStoreError(err: unknown): err is BlobStoreError {
  return err instanceof BlobStoreError;
}
