/**
 * Reading, verifying and making artifact signatures.
 *
 * What is signed (the same for every entry point, so `granary sign`, `openssl` and the registry agree):
 * - ECDSA secp256k1 / P-256: standard ECDSA with SHA-256 over the file bytes, i.e. the signature equation runs on
 *   SHA-256(file) — what `openssl dgst -sha256 -sign key.pem file` and memflow's k256 client produce and what
 *   memflow-registry verifies (`VerifyingKey::verify` on the raw file, DigestPrimitive = SHA-256).
 * - Ed25519 (Granary's choice; memflow has no Ed25519): pure Ed25519 over the 32 raw bytes of SHA-256(file), so a
 *   registry can verify from the digest it already has without reading the file again, exactly as for ECDSA. With
 *   OpenSSL: `openssl dgst -sha256 -binary file > d && openssl pkeyutl -sign -inkey ed.pem -rawin -in d`.
 *
 * Accepted text: hex (either case, optional `0x`, optionally after the `…(file)= ` / `(stdin)= ` prefix that
 * `openssl dgst -hex` prints) or base64 (standard or url-safe, padded or not, line-wrapped as `openssl base64`
 * writes it); or the raw bytes. Decoded bytes are a DER ECDSA signature, a 64-byte r‖s (IEEE P1363) ECDSA
 * signature, or a 64-byte Ed25519 signature. secp256k1 signatures with S > n/2 are refused or normalised by
 * policy; `signFile` always produces low S, which k256-based verifiers (memflowup) require.
 */
import { createHash, createSign, createVerify, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { CURVES, bigIntToBytes, bytesToBigInt, type Curve } from './curves.ts';
import { decodeDerSignature, encodeDerSignature } from './der.ts';
import { ecdsaVerifyDigest, publicPoint } from './ecdsa.ts';
import { BadDigestError, MalformedSignatureError, WrongKeyTypeError, quote } from './errors.ts';
import type {
  EcdsaAlgorithm,
  FileInput,
  ParsedSignature,
  PrivateKeyInfo,
  PublicKeyInfo,
  SignatureEncoding,
  VerifyFailure,
  VerifyOptions,
  VerifyResult,
} from './types.ts';

/** Longest signature text read (a DER signature is ≤ 72 bytes = 144 hex digits; room for prefixes and wrapping). */
export const MAX_SIGNATURE_TEXT = 1024;
/** Longest decoded signature. */
export const MAX_SIGNATURE_BYTES = 256;

const HEX = /^[0-9a-fA-F]+$/;
const B64 = /^[A-Za-z0-9+/]+={0,2}$/;
const B64URL = /^[A-Za-z0-9_-]+={0,2}$/;

function isPrintable(b: Uint8Array): boolean {
  for (const c of b) if (!(c === 9 || c === 10 || c === 13 || (c >= 0x20 && c < 0x7f))) return false;
  return true;
}

function decodeText(input: string): { bytes: Buffer; encoding: SignatureEncoding } {
  if (input.length > MAX_SIGNATURE_TEXT) throw new MalformedSignatureError(`${input.length} characters; at most ${MAX_SIGNATURE_TEXT}`);
  let t = input.trim();
  // `openssl dgst -hex` prints `EC-SHA2-256(file)= <hex>` / `SHA2-256(stdin)= <hex>`: keep what follows the last `)=`.
  const prefix = t.lastIndexOf(')=');
  if (prefix >= 0) t = t.slice(prefix + 2);
  t = t.replace(/\s+/g, '');
  if (t.length === 0) throw new MalformedSignatureError('empty signature');
  const unprefixed = /^0x/i.test(t) && HEX.test(t.slice(2)) ? t.slice(2) : t;
  if (HEX.test(unprefixed)) {
    if (unprefixed.length % 2) throw new MalformedSignatureError(`hex signature has an odd number of digits (${unprefixed.length})`);
    return { bytes: Buffer.from(unprefixed, 'hex'), encoding: 'hex' };
  }
  const url = !B64.test(t) && B64URL.test(t);
  if (!url && !B64.test(t)) {
    const bad = [...t].findIndex((ch) => !/[A-Za-z0-9+/=_-]/.test(ch));
    const why = bad >= 0 ? `unexpected character ${quote(t[bad])} at position ${bad}` : 'mixes standard and url-safe base64 or misplaces "="';
    throw new MalformedSignatureError(`neither hex nor base64 (${why})`);
  }
  const body = t.replace(/=+$/, '');
  if (body.length % 4 === 1 || (t.length !== body.length && t.length % 4 !== 0)) {
    throw new MalformedSignatureError(`base64 of impossible length (${t.length} characters)`);
  }
  const bytes = Buffer.from(body, url ? 'base64url' : 'base64');
  // Reject non-zero leftover bits in the last character, so one signature has one text.
  if (bytes.toString(url ? 'base64url' : 'base64').replace(/=+$/, '') !== body) {
    throw new MalformedSignatureError('non-canonical base64 (stray bits in the last character)');
  }
  return { bytes, encoding: url ? 'base64url' : 'base64' };
}

/**
 * Decodes a signature given as text (hex/base64, see the module comment) or bytes (a Buffer of printable ASCII is
 * read as text, anything else as the raw signature). Throws `MalformedSignatureError` unless the bytes are a strict
 * DER ECDSA signature or 64 bytes long.
 */
export function parseSignature(input: string | Uint8Array): ParsedSignature {
  let decoded: { bytes: Buffer; encoding: SignatureEncoding };
  if (typeof input === 'string') decoded = decodeText(input);
  else if (input.length > 0 && isPrintable(input)) {
    if (input.length > MAX_SIGNATURE_TEXT) throw new MalformedSignatureError(`${input.length} characters; at most ${MAX_SIGNATURE_TEXT}`);
    decoded = decodeText(Buffer.from(input).toString('latin1'));
  } else decoded = { bytes: Buffer.from(input), encoding: 'binary' };
  const { bytes, encoding } = decoded;
  if (bytes.length === 0) throw new MalformedSignatureError('empty signature');
  if (bytes.length > MAX_SIGNATURE_BYTES) throw new MalformedSignatureError(`${bytes.length} bytes; at most ${MAX_SIGNATURE_BYTES}`);
  let der: { r: bigint; s: bigint } | null = null;
  let derError: MalformedSignatureError | null = null;
  if (bytes[0] === 0x30) {
    try {
      der = decodeDerSignature(bytes);
    } catch (e) {
      if (!(e instanceof MalformedSignatureError)) throw e;
      derError = e;
    }
  }
  const raw64 = der === null && bytes.length === 64;
  if (der === null && !raw64) {
    throw derError ?? new MalformedSignatureError(`${bytes.length} bytes are neither a DER ECDSA signature nor a 64-byte raw signature`);
  }
  return { bytes, encoding, der, raw64 };
}

/** Describes a parsed signature for messages, e.g. `a 71-byte DER ECDSA signature`. */
export function describeSignature(sig: ParsedSignature): string {
  return sig.der ? `a ${sig.bytes.length}-byte DER ECDSA signature` : 'a 64-byte raw signature (ECDSA r‖s or Ed25519)';
}

function toParsed(sig: string | Uint8Array | ParsedSignature): ParsedSignature {
  return typeof sig === 'string' || sig instanceof Uint8Array ? parseSignature(sig) : sig;
}

const NAMES: Record<EcdsaAlgorithm, string> = { 'ecdsa-secp256k1': 'secp256k1', 'ecdsa-p256': 'P-256' };

/** r and s of a signature for an ECDSA key, or a `wrong-form` failure when they cannot belong to its curve. */
function ecdsaComponents(algorithm: EcdsaAlgorithm, curve: Curve, sig: ParsedSignature): { r: bigint; s: bigint; form: 'der' | 'p1363' } | VerifyFailure {
  const rs = sig.der ?? { r: bytesToBigInt(sig.bytes.subarray(0, 32)), s: bytesToBigInt(sig.bytes.subarray(32, 64)) };
  if (rs.r < 1n || rs.r >= curve.n || rs.s < 1n || rs.s >= curve.n) {
    return { valid: false, algorithm, code: 'wrong-form', reason: `r or s of the signature is not in [1, n−1] for ${NAMES[algorithm]}` };
  }
  return { ...rs, form: sig.der ? 'der' : 'p1363' };
}

/** Applies the low-S policy to a signature that verified. */
function ecdsaOutcome(algorithm: EcdsaAlgorithm, curve: Curve, r: bigint, s: bigint, form: 'der' | 'p1363', opts: VerifyOptions): VerifyResult {
  const highS = s > curve.halfN;
  if (highS && algorithm === 'ecdsa-secp256k1' && (opts.lowS ?? 'reject') === 'reject') {
    return {
      valid: false,
      algorithm,
      code: 'high-s',
      reason:
        'the signature matches but its S value is high (S > n/2), which k256-based verifiers such as memflowup refuse; ' +
        're-sign with `granary sign` (always low-S) or replace S by n − S',
    };
  }
  const low = highS ? curve.n - s : s;
  return { valid: true, algorithm, form, highS, canonicalHex: encodeDerSignature(r, low).toString('hex') };
}

const mismatch = (key: PublicKeyInfo): VerifyFailure => ({
  valid: false,
  algorithm: key.algorithm,
  code: 'mismatch',
  reason: `the signature was not made by this ${key.algorithm} key over this file`,
});

function ed25519WrongForm(sig: ParsedSignature): VerifyFailure | null {
  if (sig.raw64) return null;
  return { valid: false, algorithm: 'ed25519', code: 'wrong-form', reason: `${describeSignature(sig)} cannot be an Ed25519 signature (64 bytes)` };
}

function ed25519Verify(key: PublicKeyInfo, digest: Uint8Array, sig: ParsedSignature): VerifyResult {
  const wrong = ed25519WrongForm(sig);
  if (wrong) return wrong;
  const ok = cryptoVerify(null, digest, key.keyObject, sig.bytes);
  return ok ? { valid: true, algorithm: 'ed25519', form: 'ed25519', highS: false, canonicalHex: sig.bytes.toString('hex') } : mismatch(key);
}

function checkDigest(digest: Uint8Array): void {
  if (!(digest instanceof Uint8Array) || digest.length !== 32) throw new BadDigestError(digest?.length ?? 0);
}

/**
 * Verifies a signature against the SHA-256 digest of a file (32 raw bytes), without the file. ECDSA runs in
 * BigInt arithmetic (ecdsa.ts); Ed25519 via node:crypto over the digest. Throws `MalformedSignatureError` for
 * undecodable signatures and `BadDigestError`; every other outcome is the returned result.
 */
export function verifyPrehashed(key: PublicKeyInfo, digest: Uint8Array, signature: string | Uint8Array | ParsedSignature, opts: VerifyOptions = {}): VerifyResult {
  checkDigest(digest);
  const sig = toParsed(signature);
  if (key.algorithm === 'ed25519') return ed25519Verify(key, digest, sig);
  const curve = CURVES[key.algorithm];
  const c = ecdsaComponents(key.algorithm, curve, sig);
  if ('valid' in c) return c;
  const q = publicPoint(key.keyObject);
  if (!ecdsaVerifyDigest(curve, q.x, q.y, digest, c.r, c.s)) return mismatch(key);
  return ecdsaOutcome(key.algorithm, curve, c.r, c.s, c.form, opts);
}

/** Feeds a whole buffer or every chunk of a stream to `update`. */
async function feed(data: FileInput, update: (chunk: Uint8Array) => void): Promise<void> {
  if (data instanceof Uint8Array) {
    update(data);
    return;
  }
  for await (const chunk of data) {
    if (typeof chunk === 'string') throw new TypeError('file stream yields strings; read it without an encoding');
    update(chunk);
  }
}

/** SHA-256 of a buffer or stream. */
export async function sha256(data: FileInput): Promise<Buffer> {
  const h = createHash('sha256');
  await feed(data, (c) => h.update(c));
  return h.digest();
}

/**
 * Verifies a signature over a file given whole or as a stream (hashed while it flows; never buffered). ECDSA goes
 * through OpenSSL's SHA-256 + ECDSA (node:crypto `createVerify`), Ed25519 through its digest as documented above.
 * The signature is decoded before the stream is read: when it is malformed (throws) or cannot belong to the key
 * (`wrong-form`), the stream is left unread and the caller, who owns it, must destroy or drain it.
 */
export async function verifyFile(key: PublicKeyInfo, data: FileInput, signature: string | Uint8Array | ParsedSignature, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const sig = toParsed(signature);
  if (key.algorithm === 'ed25519') {
    const wrong = ed25519WrongForm(sig);
    return wrong ?? ed25519Verify(key, await sha256(data), sig);
  }
  const curve = CURVES[key.algorithm];
  const c = ecdsaComponents(key.algorithm, curve, sig);
  if ('valid' in c) return c;
  const v = createVerify('sha256');
  await feed(data, (chunk) => v.update(chunk));
  const der = sig.der ? sig.bytes : encodeDerSignature(c.r, c.s);
  if (!v.verify(key.keyObject, der)) return mismatch(key);
  return ecdsaOutcome(key.algorithm, curve, c.r, c.s, c.form, opts);
}

/**
 * Signs a file (whole or streamed) and returns the signature as lowercase hex: DER with low S for ECDSA (k256 and
 * OpenSSL accept it; memflow-registry's wire format), 64 bytes for Ed25519 (over SHA-256 of the file).
 */
export async function signFile(key: PrivateKeyInfo, data: FileInput): Promise<string> {
  if (key.algorithm === 'ed25519') return cryptoSign(null, await sha256(data), key.keyObject).toString('hex');
  const curve = CURVES[key.algorithm];
  const signer = createSign('sha256');
  await feed(data, (chunk) => signer.update(chunk));
  const { r, s } = decodeDerSignature(signer.sign(key.keyObject));
  return encodeDerSignature(r, s > curve.halfN ? curve.n - s : s).toString('hex');
}

/**
 * Signs a SHA-256 digest directly. Ed25519 only: node:crypto cannot sign a precomputed digest with ECDSA, and
 * doing the scalar arithmetic here would not be constant-time with a private key. ECDSA callers use `signFile`.
 */
export function signPrehashed(key: PrivateKeyInfo, digest: Uint8Array): string {
  checkDigest(digest);
  if (key.algorithm !== 'ed25519') {
    throw new WrongKeyTypeError(`signing a precomputed digest is supported for Ed25519 keys only, not ${key.algorithm}; sign the file`);
  }
  return cryptoSign(null, digest, key.keyObject).toString('hex');
}

/** The IEEE P1363 (r‖s, 64 bytes) form of an ECDSA signature, e.g. for WebCrypto or JOSE consumers. */
export function toP1363(sig: string | Uint8Array | ParsedSignature): Buffer {
  const p = toParsed(sig);
  if (!p.der) return Buffer.from(p.bytes);
  return Buffer.concat([bigIntToBytes(p.der.r, 32), bigIntToBytes(p.der.s, 32)]);
}
