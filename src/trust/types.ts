/**
 * Shared vocabulary of the trust library: algorithms, parsed keys and signatures, verification results and
 * repository signature policy. Imports no implementation.
 */
import type { KeyObject } from 'node:crypto';

/** The signature algorithms Granary trusts. ECDSA always uses SHA-256. */
export type TrustAlgorithm = 'ecdsa-secp256k1' | 'ecdsa-p256' | 'ed25519';
export type EcdsaAlgorithm = Exclude<TrustAlgorithm, 'ed25519'>;

export const TRUST_ALGORITHMS: readonly TrustAlgorithm[] = Object.freeze(['ecdsa-secp256k1', 'ecdsa-p256', 'ed25519']);

export interface PublicKeyInfo {
  algorithm: TrustAlgorithm;
  /** Node's key (type 'public'). */
  keyObject: KeyObject;
  /**
   * Lowercase hex SHA-256 of the canonical SPKI DER (EC points uncompressed), so one key has one fingerprint
   * however it was given (PEM, DER, compressed or uncompressed hex point). Equals
   * `openssl pkey -pubin -in pub.pem -outform DER | sha256sum` for keys OpenSSL writes (it writes them uncompressed).
   */
  fingerprint: string;
  /** Canonical SPKI PEM (`-----BEGIN PUBLIC KEY-----`, 64-column base64, trailing newline). */
  pem: string;
}

export interface PrivateKeyInfo {
  algorithm: TrustAlgorithm;
  /** Node's key (type 'private'). */
  keyObject: KeyObject;
  /** The matching public key, e.g. to print its fingerprint after signing. */
  publicKey: PublicKeyInfo;
}

/** How the signature text was written. `binary` = raw bytes (a Buffer that is not printable text). */
export type SignatureEncoding = 'hex' | 'base64' | 'base64url' | 'binary';

export interface ParsedSignature {
  /** The decoded signature bytes (≤ 256). */
  bytes: Buffer;
  encoding: SignatureEncoding;
  /** r and s when `bytes` is a strict DER ECDSA-Sig-Value (SEQUENCE of two minimal positive INTEGERs). */
  der: { r: bigint; s: bigint } | null;
  /**
   * `bytes` is 64 long and not DER: raw r‖s (ECDSA in IEEE P1363 form) or an Ed25519 signature; which one is
   * decided by the key it is checked against. A 64-byte input that is also strict DER counts as DER only.
   */
  raw64: boolean;
}

/**
 * What to do with a secp256k1 signature whose S is above n/2. k256 (memflow-registry, memflowup) refuses those, so
 * Granary never *stores* one: `reject` refuses it, `normalize` accepts it and hands back the low-S twin (n − S) to store.
 */
export type LowSPolicy = 'reject' | 'normalize';

export interface VerifyOptions {
  /** Applies to secp256k1 only (P-256 verifiers accept either S). Default `reject`. */
  lowS?: LowSPolicy;
}

/** Which shape the signature was read as. */
export type SignatureForm = 'der' | 'p1363' | 'ed25519';

export interface VerifySuccess {
  valid: true;
  algorithm: TrustAlgorithm;
  form: SignatureForm;
  /** The ECDSA signature as given had S > n/2 (only possible here for P-256, or secp256k1 with `normalize`). */
  highS: boolean;
  /**
   * The signature to store and hand to clients, lowercase hex: for ECDSA the DER encoding with low S (what
   * k256's `Signature::from_der` + `verify` and `openssl dgst -verify` both accept); for Ed25519 the 64 bytes.
   */
  canonicalHex: string;
}

export type VerifyFailureCode =
  /** Well-formed and of the key's kind, but not made by this key over this file. */
  | 'mismatch'
  /** Made by this key over this file, but secp256k1 with S > n/2 and the policy is `reject`. */
  | 'high-s'
  /** Cannot be a signature of this key's algorithm (DER for an Ed25519 key; r or s not below this curve's order). */
  | 'wrong-form';

export interface VerifyFailure {
  valid: false;
  algorithm: TrustAlgorithm;
  code: VerifyFailureCode;
  /** One sentence for the person who sent the signature. */
  reason: string;
}

export type VerifyResult = VerifySuccess | VerifyFailure;

/** Bytes of a file, whole or as a stream (a Node Readable is an AsyncIterable<Buffer>). */
export type FileInput = Uint8Array | AsyncIterable<Uint8Array>;

/** Repository signature policy: `required` refuses unsigned uploads, `optional` checks signatures when given, `off` ignores them. */
export type SignatureMode = 'required' | 'optional' | 'off';

export interface SignaturePolicy {
  mode: SignatureMode;
  /** secp256k1 high-S handling; default `reject`. */
  lowS?: LowSPolicy;
}

export interface TrustedKey {
  /** The repository's name for the key (unique within the repository). */
  id: string;
  key: PublicKeyInfo;
}

/** The uploaded file, by what the caller has: its SHA-256 (Buffer or hex, `sha256:` prefix allowed), its bytes, or a stream. */
export type UploadFile = { digest: Uint8Array | string } | { bytes: Uint8Array } | { stream: AsyncIterable<Uint8Array> };

export type UploadCheckCode =
  | 'verified'
  /** No signature was given (refused when required). */
  | 'unsigned'
  /** The policy is `off`: nothing was checked. */
  | 'off'
  /** A signature was given but the repository trusts no key (refused when required, accepted unchecked when optional). */
  | 'no-trusted-keys'
  /** The signature cannot be decoded. */
  | 'malformed'
  /** No trusted key verifies the signature over this file. */
  | 'untrusted'
  /** A trusted secp256k1 key verifies it, but S is high and the policy rejects high S. */
  | 'high-s';

export interface UploadCheck {
  /** Whether the upload may proceed under the policy. */
  accepted: boolean;
  /** Whether a trusted key verified the signature. */
  verified: boolean;
  code: UploadCheckCode;
  /** The trusted key that verified it. */
  keyId?: string;
  algorithm?: TrustAlgorithm;
  /** User-facing explanation whenever `verified` is false, or when S was normalised. */
  reason?: string;
  /**
   * What to store with the artifact when accepted with a signature: `canonicalHex` when verified, else the text
   * as given (trimmed; hex when bytes were given) — unchecked, because the policy is `off` or no key is trusted yet.
   */
  signature?: string;
}
