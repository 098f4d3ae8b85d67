/**
 * Typed errors of the trust library. Every failure to *read* a key or a signature is a `TrustError` with a stable
 * `code` and a message fit to show the person who gave the input; routes map all of them to 400 and the CLI to its
 * usage exit code. A signature that is well-formed but does not verify is not an error: the verify functions
 * return `{ valid: false, … }` for that. Anything else escaping this folder is a bug (test/trust fuzzes for it).
 */

export const TRUST_ERROR_CODES = {
  /** Not a key at all, or a key encoding Granary cannot read (bad PEM/DER, point not on the curve…). */
  MALFORMED_KEY: 'MALFORMED_KEY',
  /** A readable key of a kind Granary refuses: RSA, DSA, Ed448, an EC curve other than secp256k1 / P-256… */
  UNSUPPORTED_KEY: 'UNSUPPORTED_KEY',
  /** A private key where a public one was expected, or the reverse. */
  WRONG_KEY_TYPE: 'WRONG_KEY_TYPE',
  /** The signature text or bytes cannot be decoded (bad hex/base64, bad DER, wrong length, r or s out of range…). */
  MALFORMED_SIGNATURE: 'MALFORMED_SIGNATURE',
  /** A digest argument that is not 32 bytes of SHA-256. */
  BAD_DIGEST: 'BAD_DIGEST',
} as const;

export type TrustErrorCode = (typeof TRUST_ERROR_CODES)[keyof typeof TRUST_ERROR_CODES];

export class TrustError extends Error {
  readonly code: TrustErrorCode;
  constructor(code: TrustErrorCode, message: string, opts?: { cause?: unknown }) {
    super(message, opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
  }
}

export class MalformedKeyError extends TrustError {
  constructor(message: string, opts?: { cause?: unknown }) {
    super(TRUST_ERROR_CODES.MALFORMED_KEY, message, opts);
  }
}

export class UnsupportedKeyError extends TrustError {
  /** What was given, e.g. `rsa (2048-bit)` or `ec secp384r1`. */
  readonly given: string;
  constructor(given: string) {
    super(
      TRUST_ERROR_CODES.UNSUPPORTED_KEY,
      `unsupported key: ${given}; Granary accepts ECDSA secp256k1, ECDSA P-256 (prime256v1) and Ed25519 keys`,
    );
    this.given = given;
  }
}

export class WrongKeyTypeError extends TrustError {
  constructor(message: string) {
    super(TRUST_ERROR_CODES.WRONG_KEY_TYPE, message);
  }
}

export class MalformedSignatureError extends TrustError {
  constructor(message: string) {
    super(TRUST_ERROR_CODES.MALFORMED_SIGNATURE, `malformed signature: ${message}`);
  }
}

export class BadDigestError extends TrustError {
  constructor(length: number) {
    super(TRUST_ERROR_CODES.BAD_DIGEST, `a SHA-256 digest is 32 bytes, got ${length}`);
  }
}

export const isTrustError = (e: unknown): e is TrustError => e instanceof TrustError;

/** Quotes untrusted input in messages without letting it grow them unboundedly. */
export function quote(s: string, max = 40): string {
  const cut = s.length > max ? `${s.slice(0, max)}…` : s;
  return JSON.stringify(cut);
}
