/**
 * The OCI Distribution error catalogue, as data, and the one error type OCI handlers throw.
 *
 * Spec: distribution-spec v1.1 "Error Codes" (code-1 … code-14). The `code` field "MUST be one of" those; two
 * codes of CNCF Distribution are kept beside them because clients know them and no spec code fits:
 * RANGE_INVALID (416, out-of-order chunk) and PAGINATION_NUMBER_INVALID (400, bad `n`). Clients "SHOULD treat
 * unknown error codes as UNKNOWN", so they are safe.
 *
 * Statuses follow CNCF Distribution (`registry/api/errcode/register.go`) except where noted:
 * - UNSUPPORTED → 405, as Distribution (the spec gives no status; for disabled deletes the spec allows 400 or 405).
 * - MANIFEST_BLOB_UNKNOWN → 404 here; Distribution answers 400. Clients key on the code, not the status
 *   (containers/image and docker both read the envelope); override per throw if a client ever needs 400.
 * - BLOB_UPLOAD_INVALID → 400 here; Distribution registers 404, which reads as "session gone" to some clients.
 * The route writes `ociErrorBody(...)` with `content-type: application/json; charset=utf-8`.
 */

export const OCI_ERRORS = {
  BLOB_UNKNOWN: {
    status: 404,
    message: 'blob unknown to registry',
    description:
      'This error MAY be returned when a blob is unknown to the registry in a specified repository. ' +
      'This can be returned with a standard get or if a manifest references an unknown layer during upload.',
  },
  BLOB_UPLOAD_INVALID: {
    status: 400,
    message: 'blob upload invalid',
    description: 'The blob upload encountered an error and can no longer proceed.',
  },
  BLOB_UPLOAD_UNKNOWN: {
    status: 404,
    message: 'blob upload unknown to registry',
    description: 'If a blob upload has been cancelled or was never started, this error code MAY be returned.',
  },
  DIGEST_INVALID: {
    status: 400,
    message: 'provided digest did not match uploaded content',
    description:
      'When a blob is uploaded, the registry will check that the content matches the digest provided by the ' +
      'client. The error MAY include a detail structure with the key "digest", including the invalid digest ' +
      'string. This error MAY also be returned when a manifest includes an invalid layer digest.',
  },
  MANIFEST_BLOB_UNKNOWN: {
    status: 404,
    message: 'manifest references a manifest or blob unknown to registry',
    description: 'This error MAY be returned when a manifest blob is unknown to the registry.',
  },
  MANIFEST_INVALID: {
    status: 400,
    message: 'manifest invalid',
    description:
      'During upload, manifests undergo several checks ensuring validity. If those checks fail, this error ' +
      'MAY be returned, unless a more specific error is included. The detail will contain information the ' +
      'failed validation.',
  },
  MANIFEST_UNKNOWN: {
    status: 404,
    message: 'manifest unknown to registry',
    description: 'This error is returned when the manifest, identified by name and tag is unknown to the repository.',
  },
  NAME_INVALID: {
    status: 400,
    message: 'invalid repository name',
    description: 'Invalid repository name encountered either during manifest validation or any API operation.',
  },
  NAME_UNKNOWN: {
    status: 404,
    message: 'repository name not known to registry',
    description: 'This is returned if the name used during an operation is unknown to the registry.',
  },
  SIZE_INVALID: {
    status: 400,
    message: 'provided length did not match content length',
    description:
      'When a layer is uploaded, the provided size will be checked against the uploaded content. ' +
      'If they do not match, this error will be returned.',
  },
  UNAUTHORIZED: {
    status: 401,
    message: 'authentication required',
    description:
      'The access controller was unable to authenticate the client. Often this will be accompanied by a ' +
      'Www-Authenticate HTTP response header indicating how to authenticate.',
  },
  DENIED: {
    status: 403,
    message: 'requested access to the resource is denied',
    description: 'The access controller denied access for the operation on a resource.',
  },
  UNSUPPORTED: {
    status: 405,
    message: 'the operation is unsupported',
    description: 'The operation was unsupported due to a missing implementation or invalid set of parameters.',
  },
  TOOMANYREQUESTS: {
    status: 429,
    message: 'too many requests',
    description: 'Returned when a client attempts to contact a service too many times.',
  },
  RANGE_INVALID: {
    status: 416,
    message: 'invalid content range',
    description:
      'When a layer is uploaded, the provided range is checked against the uploaded chunk. This error is ' +
      'returned if the range is out of order. (CNCF Distribution extension.)',
  },
  PAGINATION_NUMBER_INVALID: {
    status: 400,
    message: 'invalid number of results requested',
    description:
      'Returned when the "n" parameter (number of results to return) is not an integer or is negative. ' +
      '(CNCF Distribution extension.)',
  },
} as const satisfies Record<string, { status: number; message: string; description: string }>;

export type OciErrorCode = keyof typeof OCI_ERRORS;

export const OCI_ERROR_CODES = Object.keys(OCI_ERRORS) as OciErrorCode[];

export function isOciErrorCode(value: unknown): value is OciErrorCode {
  return typeof value === 'string' && Object.hasOwn(OCI_ERRORS, value);
}

/** One entry of the `errors` array on the wire. `detail` is left out when there is none (as Distribution does). */
export interface OciErrorEntry {
  code: OciErrorCode;
  message: string;
  detail?: unknown;
}

/**
 * The error every OCI handler throws. `status` defaults to the catalogue's; pass one to override
 * (e.g. 413 for an oversized manifest, which the spec wants but has no code for).
 */
export class OciError extends Error {
  readonly code: OciErrorCode;
  readonly status: number;
  readonly detail: unknown;

  constructor(code: OciErrorCode, message?: string, detail?: unknown, status?: number) {
    super(message ?? OCI_ERRORS[code].message);
    this.name = 'OciError';
    this.code = code;
    this.detail = detail;
    this.status = status ?? OCI_ERRORS[code].status;
  }

  toEntry(): OciErrorEntry {
    const entry: OciErrorEntry = { code: this.code, message: this.message };
    if (this.detail !== undefined) entry.detail = this.detail;
    return entry;
  }
}

/** The JSON body of a 4xx answer: `{"errors":[{"code","message","detail"?}]}`. */
export function ociErrorBody(errors: OciError | readonly OciError[]): { errors: OciErrorEntry[] } {
  const list = Array.isArray(errors) ? (errors as readonly OciError[]) : [errors as OciError];
  return { errors: list.map((e) => e.toEntry()) };
}

/**
 * The status to send for several errors at once (e.g. one MANIFEST_BLOB_UNKNOWN per missing blob):
 * the first error's status, as Distribution's errcode handler does.
 */
export function ociErrorsStatus(errors: readonly OciError[]): number {
  return errors.length > 0 ? errors[0].status : 500;
}
