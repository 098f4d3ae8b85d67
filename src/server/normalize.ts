/**
 * Turns whatever was thrown (our errors, blob-store errors, Fastify's own) into a GranaryError, so each
 * format's error handler only has to write its envelope.
 */
import type { FastifyError } from 'fastify';
import { GranaryError, type ErrorCode } from './errors.ts';

/** Blob-store error names (src/blobs/errors.ts) → catalogue codes. */
const BLOB_ERRORS: Record<string, ErrorCode> = {
  InvalidDigestError: 'BAD_REQUEST',
  BlobNotFoundError: 'NOT_FOUND',
  DigestMismatchError: 'BAD_REQUEST',
  SizeMismatchError: 'BAD_REQUEST',
  TooLargeError: 'TOO_LARGE',
  RangeNotSatisfiableError: 'RANGE_NOT_SATISFIABLE',
  UploadNotFoundError: 'NOT_FOUND',
  UploadExistsError: 'CONFLICT',
  UploadOffsetError: 'RANGE_NOT_SATISFIABLE',
  InvalidUploadIdError: 'BAD_REQUEST',
};

const STATUS_CODES: Record<number, ErrorCode> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'DENIED',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  413: 'TOO_LARGE',
  415: 'BAD_REQUEST',
  416: 'RANGE_NOT_SATISFIABLE',
  429: 'TOO_MANY_REQUESTS',
  503: 'UNAVAILABLE',
};

export function normalizeError(err: unknown): GranaryError {
  if (err instanceof GranaryError) return err;
  const e = err as Partial<FastifyError> & Error;
  const blobCode = e?.name ? BLOB_ERRORS[e.name] : undefined;
  if (blobCode) return new GranaryError(blobCode, e.message, { cause: e });
  if (e?.validation) return new GranaryError('VALIDATION', e.message, { details: e.validation, cause: e });
  if (e?.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new GranaryError('TOO_LARGE', e.message, { cause: e });
  if (e?.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new GranaryError('BAD_REQUEST', e.message, { cause: e });
  if (e?.code === 'ABORT_ERR' || e?.name === 'AbortError') return new GranaryError('BAD_REQUEST', 'request aborted', { cause: e });
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 500;
  if (status < 500 && STATUS_CODES[status]) return new GranaryError(STATUS_CODES[status], e.message, { cause: e });
  return new GranaryError('INTERNAL', undefined, { cause: e });
}
