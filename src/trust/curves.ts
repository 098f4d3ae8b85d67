/**
 * Domain parameters of the two ECDSA curves Granary trusts, as BigInts, straight from SEC 2 v2 §2.4.1 (secp256k1)
 * and FIPS 186-4 D.1.2.3 / SEC 2 §2.4.2 (P-256 = secp256r1 = prime256v1). test/trust/curves.test.ts checks them
 * against OpenSSL (G = 1·G, (n−1)·G = −G, G on the curve). Both have a = 0 or p − 3, p ≡ 3 (mod 4) and cofactor 1.
 */
import type { EcdsaAlgorithm } from './types.ts';

export interface Curve {
  /** OpenSSL / Node name (`asymmetricKeyDetails.namedCurve`). */
  readonly name: 'secp256k1' | 'prime256v1';
  /** JWK `crv`. */
  readonly jwk: 'secp256k1' | 'P-256';
  readonly p: bigint;
  readonly a: bigint;
  readonly b: bigint;
  readonly gx: bigint;
  readonly gy: bigint;
  /** Order of G. */
  readonly n: bigint;
  /** ⌊n/2⌋: a signature is "low-S" when s ≤ halfN. */
  readonly halfN: bigint;
  /** Size of a coordinate / scalar in bytes. */
  readonly size: 32;
}

const P_K1 = 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2fn;
const N_K1 = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const P_R1 = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const N_R1 = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

export const SECP256K1: Curve = Object.freeze({
  name: 'secp256k1',
  jwk: 'secp256k1',
  p: P_K1,
  a: 0n,
  b: 7n,
  gx: 0x79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798n,
  gy: 0x483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8n,
  n: N_K1,
  halfN: N_K1 >> 1n,
  size: 32,
});

export const P256: Curve = Object.freeze({
  name: 'prime256v1',
  jwk: 'P-256',
  p: P_R1,
  a: P_R1 - 3n,
  b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
  gx: 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
  gy: 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n,
  n: N_R1,
  halfN: N_R1 >> 1n,
  size: 32,
});

export const CURVES: Readonly<Record<EcdsaAlgorithm, Curve>> = Object.freeze({
  'ecdsa-secp256k1': SECP256K1,
  'ecdsa-p256': P256,
});

/** Big-endian unsigned bytes → BigInt (empty → 0). */
export function bytesToBigInt(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt(`0x${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')}`);
}

/** BigInt ≥ 0 → exactly `len` big-endian bytes; throws RangeError if it does not fit (a caller bug). */
export function bigIntToBytes(v: bigint, len: number): Buffer {
  if (v < 0n) throw new RangeError('negative integer');
  const hex = v.toString(16);
  if (hex.length > len * 2) throw new RangeError(`integer does not fit in ${len} bytes`);
  return Buffer.from(hex.padStart(len * 2, '0'), 'hex');
}
