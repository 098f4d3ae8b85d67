/**
 * Granary's trust library: which public keys a repository trusts, how artifact signatures are read, verified and
 * made, and how a repository's signature policy judges an upload. Pure functions over keys, digests and streams —
 * no server, no database; routes and CLI commands build on it. What each algorithm signs is documented in
 * signature.ts (ECDSA: SHA-256 of the file, as memflow-registry; Ed25519: the 32-byte SHA-256 digest of the file).
 */
export {
  BadDigestError,
  MalformedKeyError,
  MalformedSignatureError,
  TRUST_ERROR_CODES,
  TrustError,
  UnsupportedKeyError,
  WrongKeyTypeError,
  isTrustError,
  type TrustErrorCode,
} from './errors.ts';
export type * from './types.ts';
export { TRUST_ALGORITHMS } from './types.ts';
export { CURVES, P256, SECP256K1, type Curve } from './curves.ts';
export { decodeDerSignature, encodeDerSignature } from './der.ts';
export { parsePrivateKey, parsePublicKey, publicKeyInfo, type ParseKeyOptions, type ParsePrivateKeyOptions } from './keys.ts';
export {
  MAX_SIGNATURE_BYTES,
  MAX_SIGNATURE_TEXT,
  describeSignature,
  parseSignature,
  sha256,
  signFile,
  signPrehashed,
  toP1363,
  verifyFile,
  verifyPrehashed,
} from './signature.ts';
export { checkUpload, uploadDigest } from './policy.ts';
