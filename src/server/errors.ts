/**
 * The core error catalogue: every error the core raises has a code, an HTTP status and a default message.
 * Handlers and services throw `GranaryError`; one error handler per format scope turns it into that
 * protocol's envelope (OCI JSON, npm JSON…). The management API writes `{ error: { code, message } }`.
 * docs/api.md lists these codes; test/server/errors-doc.test.ts fails when one is missing there.
 */

export const ERRORS = {
  BAD_REQUEST: { status: 400, message: 'the request is malformed' },
  VALIDATION: { status: 400, message: 'the request does not match the schema' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  NOT_FOUND: { status: 404, message: 'not found' },
  REPOSITORY_UNKNOWN: { status: 404, message: 'repository not found' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'the operation is not supported' },
  CONFLICT: { status: 409, message: 'the resource already exists or was changed' },
  GONE: { status: 410, message: 'the resource is gone' },
  TOO_LARGE: { status: 413, message: 'the request body is too large' },
  RANGE_NOT_SATISFIABLE: { status: 416, message: 'the requested range is not satisfiable' },
  UNPROCESSABLE: { status: 422, message: 'the content is invalid' },
  TOO_MANY_REQUESTS: { status: 429, message: 'too many requests' },
  INTERNAL: { status: 500, message: 'internal server error' },
  UNAVAILABLE: { status: 503, message: 'the service is unavailable' },
  UPSTREAM_FAILED: { status: 502, message: 'the upstream of a proxy repository failed' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class GranaryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: unknown;
  /** Extra response headers (Retry-After, WWW-Authenticate…). */
  readonly headers: Record<string, string>;
  constructor(code: ErrorCode, message?: string, opts: { details?: unknown; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(message ?? ERRORS[code].message, { cause: opts.cause });
    this.name = 'GranaryError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.details = opts.details;
    this.headers = opts.headers ?? {};
  }
}

export const isGranaryError = (e: unknown): e is GranaryError => e instanceof GranaryError;
