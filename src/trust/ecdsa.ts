/**
 * ECDSA verification over a precomputed SHA-256 digest, in BigInt arithmetic. node:crypto cannot do this:
 * `crypto.verify(null, digest, ecKey, sig)` does not skip hashing for EC keys (OpenSSL falls back to the key's
 * default digest, SHA-256, and hashes the digest again), and Node exposes no EVP_PKEY_verify. The registry needs it
 * because it knows an upload's SHA-256 from the blob store without reading the file again.
 *
 * Only public data is involved (key, digest, signature), so variable-time arithmetic leaks nothing; signing, which
 * touches the private key, stays in OpenSSL (signature.ts). test/trust cross-checks this against
 * `openssl pkeyutl -verify` and against Node's own file verification, including tampered and high-S inputs.
 * Cost: one Shamir double-scalar multiplication in Jacobian coordinates, a few milliseconds per verification.
 */
import type { KeyObject } from 'node:crypto';
import { bytesToBigInt, type Curve } from './curves.ts';

interface Jacobian {
  x: bigint;
  y: bigint;
  /** 0 = the point at infinity. */
  z: bigint;
}

const mod = (a: bigint, m: bigint): bigint => {
  const r = a % m;
  return r < 0n ? r + m : r;
};

/** Inverse modulo a prime m of a value not divisible by m (extended Euclid). */
export function invert(a: bigint, m: bigint): bigint {
  let [oldR, r] = [mod(a, m), m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  if (oldR !== 1n) throw new RangeError('not invertible');
  return mod(oldS, m);
}

function double(c: Curve, P: Jacobian): Jacobian {
  const { p } = c;
  if (P.z === 0n || P.y === 0n) return { x: 0n, y: 1n, z: 0n };
  const xx = (P.x * P.x) % p;
  const yy = (P.y * P.y) % p;
  const yyyy = (yy * yy) % p;
  const zz = (P.z * P.z) % p;
  const s = (4n * P.x * yy) % p;
  const m = c.a === 0n ? (3n * xx) % p : (3n * xx + c.a * ((zz * zz) % p)) % p;
  const x3 = mod(m * m - 2n * s, p);
  const y3 = mod(m * (s - x3) - 8n * yyyy, p);
  const z3 = (2n * P.y * P.z) % p;
  return { x: x3, y: y3, z: z3 };
}

function add(c: Curve, P: Jacobian, Q: Jacobian): Jacobian {
  const { p } = c;
  if (P.z === 0n) return Q;
  if (Q.z === 0n) return P;
  const z1z1 = (P.z * P.z) % p;
  const z2z2 = (Q.z * Q.z) % p;
  const u1 = (P.x * z2z2) % p;
  const u2 = (Q.x * z1z1) % p;
  const s1 = (((P.y * Q.z) % p) * z2z2) % p;
  const s2 = (((Q.y * P.z) % p) * z1z1) % p;
  if (u1 === u2) return s1 === s2 ? double(c, P) : { x: 0n, y: 1n, z: 0n };
  const h = mod(u2 - u1, p);
  const r = mod(s2 - s1, p);
  const hh = (h * h) % p;
  const hhh = (h * hh) % p;
  const v = (u1 * hh) % p;
  const x3 = mod(r * r - hhh - 2n * v, p);
  const y3 = mod(r * (v - x3) - s1 * hhh, p);
  const z3 = (((P.z * Q.z) % p) * h) % p;
  return { x: x3, y: y3, z: z3 };
}

/** y² = x³ + ax + b over the curve's field, for affine coordinates already reduced mod p. */
export function isOnCurve(c: Curve, x: bigint, y: bigint): boolean {
  if (x < 0n || x >= c.p || y < 0n || y >= c.p) return false;
  return mod(y * y - (x * x * x + c.a * x + c.b), c.p) === 0n;
}

/** Affine x coordinate of u1·G + u2·Q (Shamir's trick), or null for the point at infinity. */
function shamirX(c: Curve, u1: bigint, u2: bigint, qx: bigint, qy: bigint): bigint | null {
  const G: Jacobian = { x: c.gx, y: c.gy, z: 1n };
  const Q: Jacobian = { x: qx, y: qy, z: 1n };
  const GQ = add(c, G, Q);
  let R: Jacobian = { x: 0n, y: 1n, z: 0n };
  const bits = Math.max(u1.toString(2).length, u2.toString(2).length);
  for (let i = bits - 1; i >= 0; i--) {
    R = double(c, R);
    const b1 = (u1 >> BigInt(i)) & 1n;
    const b2 = (u2 >> BigInt(i)) & 1n;
    if (b1 && b2) R = add(c, R, GQ);
    else if (b1) R = add(c, R, G);
    else if (b2) R = add(c, R, Q);
  }
  if (R.z === 0n) return null;
  const zi = invert(R.z, c.p);
  return (R.x * ((zi * zi) % c.p)) % c.p;
}

/**
 * ECDSA verification (SEC 1 §4.1.4) of (r, s) over a digest of the curve's size. Returns false for r or s outside
 * [1, n−1] and for a public point not on the curve; never throws for any input of these types.
 */
export function ecdsaVerifyDigest(c: Curve, qx: bigint, qy: bigint, digest: Uint8Array, r: bigint, s: bigint): boolean {
  if (r < 1n || r >= c.n || s < 1n || s >= c.n) return false;
  if (!isOnCurve(c, qx, qy)) return false;
  // bits2int: the digest is exactly as wide as n (256 bits), so no truncation; reduce mod n.
  const e = mod(bytesToBigInt(digest.subarray(0, c.size)), c.n);
  const w = invert(s, c.n);
  const u1 = (e * w) % c.n;
  const u2 = (r * w) % c.n;
  const x = shamirX(c, u1, u2, qx, qy);
  return x !== null && x % c.n === r;
}

const points = new WeakMap<KeyObject, { x: bigint; y: bigint }>();

/** The affine public point of an EC KeyObject (via its JWK), cached per key. */
export function publicPoint(key: KeyObject): { x: bigint; y: bigint } {
  let pt = points.get(key);
  if (!pt) {
    const jwk = key.export({ format: 'jwk' });
    if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string') throw new TypeError('not an EC public key');
    pt = { x: bytesToBigInt(Buffer.from(jwk.x, 'base64url')), y: bytesToBigInt(Buffer.from(jwk.y, 'base64url')) };
    points.set(key, pt);
  }
  return pt;
}
