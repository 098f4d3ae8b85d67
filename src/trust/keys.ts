/**
 * Reading the keys Granary trusts. Public keys come as PEM SPKI (`-----BEGIN PUBLIC KEY-----`, what
 * `openssl ec -pubout` / `openssl pkey -pubout` write and what memflow-registry's `MEMFLOW_PUBLIC_KEY_FILE` holds),
 * as `-----BEGIN EC PUBLIC KEY-----` (same DER under another label), as DER SPKI bytes, as unarmoured base64 or hex
 * of SPKI DER, or as a raw point in hex/base64/bytes (65-byte uncompressed EC point, whose curve is found by which curve it
 * lies on; 33-byte compressed EC point with the algorithm given; 32-byte Ed25519). Private keys (for signing) come as PKCS#8 PEM
 * (memflow's Rust client), SEC1 `-----BEGIN EC PRIVATE KEY-----` (what `openssl ecparam -genkey` writes, with or
 * without its EC PARAMETERS block), encrypted PKCS#8 with a passphrase, or DER.
 *
 * Only ECDSA secp256k1, ECDSA P-256 and Ed25519 are accepted; anything else is refused by name.
 */
import { createHash, createPrivateKey, createPublicKey, ECDH, type KeyObject } from 'node:crypto';
import { MalformedKeyError, UnsupportedKeyError, WrongKeyTypeError, TrustError, quote } from './errors.ts';
import type { PrivateKeyInfo, PublicKeyInfo, TrustAlgorithm } from './types.ts';

export interface ParseKeyOptions {
  /** Require this algorithm (and use it to read a raw EC point that would otherwise be ambiguous). */
  algorithm?: TrustAlgorithm;
}

export interface ParsePrivateKeyOptions {
  /** Passphrase of an encrypted PEM key. */
  passphrase?: string;
  algorithm?: TrustAlgorithm;
}

/** Longest key input read (an RSA-4096 PEM with a certificate beside it fits). */
const MAX_KEY_INPUT = 64 * 1024;

/** DER SubjectPublicKeyInfo up to (excluding) the key bytes, per algorithm. */
const SPKI_PREFIX: Readonly<Record<TrustAlgorithm, Buffer>> = Object.freeze({
  // SEQUENCE { SEQUENCE { id-ecPublicKey, secp256k1 }, BIT STRING (66) 00 … }
  'ecdsa-secp256k1': Buffer.from('3056301006072a8648ce3d020106052b8104000a034200', 'hex'),
  // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (66) 00 … }
  'ecdsa-p256': Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'),
  // SEQUENCE { SEQUENCE { id-Ed25519 }, BIT STRING (33) 00 … }
  ed25519: Buffer.from('302a300506032b6570032100', 'hex'),
});

const NODE_CURVE = { 'ecdsa-secp256k1': 'secp256k1', 'ecdsa-p256': 'prime256v1' } as const;

const PRIVATE_LABELS = new Set(['PRIVATE KEY', 'EC PRIVATE KEY', 'ENCRYPTED PRIVATE KEY', 'RSA PRIVATE KEY', 'DSA PRIVATE KEY', 'OPENSSH PRIVATE KEY']);
const PUBLIC_LABELS = new Set(['PUBLIC KEY', 'EC PUBLIC KEY', 'RSA PUBLIC KEY']);

interface PemBlock {
  label: string;
  der: Buffer;
}

function pemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]{1,40})-----([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    // Skip RFC 1421 headers (Proc-Type, DEK-Info) of legacy encrypted keys; those blocks go to OpenSSL whole.
    const body = m[2].replace(/^[A-Za-z-]+:.*$/gm, '').replace(/\s+/g, '');
    out.push({ label: m[1], der: Buffer.from(body, 'base64') });
  }
  return out;
}

/** Text of `input` when it is printable (PEM, hex, base64), else null (binary DER / raw bytes). */
function asText(input: string | Uint8Array): string | null {
  if (typeof input === 'string') return input;
  for (const b of input) if (!(b === 9 || b === 10 || b === 13 || (b >= 0x20 && b < 0x7f))) return null;
  return Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('latin1');
}

/** Bytes of unarmoured hex or base64 key text, or null when it is neither. */
function decodeKeyText(text: string): Buffer | null {
  const t = text.replace(/\s+/g, '');
  const h = t.replace(/^0x/i, '');
  if (h.length > 0 && h.length % 2 === 0 && /^[0-9a-fA-F]+$/.test(h)) return Buffer.from(h, 'hex');
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(t) || /^[A-Za-z0-9_-]+={0,2}$/.test(t)) {
    const b = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    return b.length > 0 ? b : null;
  }
  return null;
}

/** Algorithm of a Node key, or `UnsupportedKeyError` naming what it is. */
function classify(key: KeyObject): TrustAlgorithm {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'ed25519') return 'ed25519';
  if (type === 'ec') {
    if (details.namedCurve === 'secp256k1') return 'ecdsa-secp256k1';
    if (details.namedCurve === 'prime256v1') return 'ecdsa-p256';
    throw new UnsupportedKeyError(`an EC key on curve ${details.namedCurve ?? '(unnamed)'}`);
  }
  if (type === 'rsa' || type === 'rsa-pss') {
    throw new UnsupportedKeyError(`an RSA key${details.modulusLength ? ` (${details.modulusLength}-bit)` : ''}`);
  }
  throw new UnsupportedKeyError(`a${/^[aeiou]/i.test(type ?? '') ? 'n' : ''} ${type ?? 'unknown'} key`);
}

function requireAlgorithm(got: TrustAlgorithm, want: TrustAlgorithm | undefined): void {
  if (want !== undefined && got !== want) throw new UnsupportedKeyError(`an ${got} key where ${want} is required`);
}

/** Canonical SPKI DER: EC points uncompressed, rebuilt from the key's coordinates. */
function canonicalSpki(key: KeyObject, algorithm: TrustAlgorithm): Buffer {
  const jwk = key.export({ format: 'jwk' });
  const x = Buffer.from(String(jwk.x), 'base64url');
  if (algorithm === 'ed25519') return Buffer.concat([SPKI_PREFIX.ed25519, x]);
  const y = Buffer.from(String(jwk.y), 'base64url');
  const pad = (b: Buffer) => Buffer.concat([Buffer.alloc(32 - b.length), b]);
  return Buffer.concat([SPKI_PREFIX[algorithm], Buffer.from([4]), pad(x), pad(y)]);
}

function toPem(der: Buffer, label = 'PUBLIC KEY'): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Wraps a Node public key Granary accepts; refuses other kinds by name. */
export function publicKeyInfo(key: KeyObject, want?: TrustAlgorithm): PublicKeyInfo {
  if (key.type !== 'public') throw new WrongKeyTypeError(`expected a public key, got a ${key.type} key`);
  const algorithm = classify(key);
  requireAlgorithm(algorithm, want);
  const der = canonicalSpki(key, algorithm);
  return { algorithm, keyObject: key, fingerprint: createHash('sha256').update(der).digest('hex'), pem: toPem(der) };
}

function fromSpkiDer(der: Buffer, want: TrustAlgorithm | undefined): PublicKeyInfo {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch (cause) {
    if (looksPrivateDer(der)) throw privateGiven();
    throw new MalformedKeyError('not a readable DER SubjectPublicKeyInfo (or its point is not on its curve)', { cause });
  }
  return publicKeyInfo(key, want);
}

function looksPrivateDer(der: Buffer): boolean {
  for (const type of ['pkcs8', 'sec1'] as const) {
    try {
      createPrivateKey({ key: der, format: 'der', type });
      return true;
    } catch {
      // not this form
    }
  }
  return false;
}

const privateGiven = () =>
  new WrongKeyTypeError('this is a private key; give its public key instead (openssl pkey -in key.pem -pubout), and keep the private key secret');

/** A raw EC point (33 or 65 bytes) on `algorithm`'s curve, or null when it is not a point of that curve. */
function rawEcPoint(bytes: Buffer, algorithm: 'ecdsa-secp256k1' | 'ecdsa-p256'): PublicKeyInfo | null {
  try {
    const point = bytes.length === 65 ? bytes : (ECDH.convertKey(bytes, NODE_CURVE[algorithm], undefined, undefined, 'uncompressed') as Buffer);
    const key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX[algorithm], point]), format: 'der', type: 'spki' });
    return publicKeyInfo(key, algorithm);
  } catch (e) {
    if (e instanceof TrustError) throw e;
    return null;
  }
}

function fromBytes(bytes: Buffer, want: TrustAlgorithm | undefined): PublicKeyInfo {
  const isPoint = (bytes.length === 33 && (bytes[0] === 2 || bytes[0] === 3)) || (bytes.length === 65 && bytes[0] === 4);
  if (isPoint && want !== 'ed25519') {
    // An uncompressed point lies on at most one of the curves (barring a 2^-256 coincidence); a compressed x lies on
    // each with probability 1/2, so its curve must be said.
    if (bytes.length === 33 && want === undefined) {
      throw new MalformedKeyError(
        "a compressed raw EC point does not say its curve; give the algorithm ('ecdsa-secp256k1' or 'ecdsa-p256') or a PEM/DER SPKI key",
      );
    }
    const curves = want ? [want] : (['ecdsa-secp256k1', 'ecdsa-p256'] as const);
    const found = curves.map((a) => rawEcPoint(bytes, a as 'ecdsa-secp256k1' | 'ecdsa-p256')).filter((k) => k !== null);
    if (found.length === 1) return found[0];
    if (found.length > 1) throw new MalformedKeyError('the raw EC point lies on both secp256k1 and P-256; say which algorithm it is');
    throw new MalformedKeyError(`the ${bytes.length}-byte raw EC point is not on ${want ? NODE_CURVE[want as 'ecdsa-p256'] : 'secp256k1 or P-256'}`);
  }
  if (bytes.length === 32 && (want === undefined || want === 'ed25519')) {
    try {
      return publicKeyInfo(createPublicKey({ key: Buffer.concat([SPKI_PREFIX.ed25519, bytes]), format: 'der', type: 'spki' }), want);
    } catch (cause) {
      if (cause instanceof TrustError) throw cause;
      throw new MalformedKeyError('not a valid raw Ed25519 public key', { cause });
    }
  }
  if (bytes[0] === 0x30) return fromSpkiDer(bytes, want);
  throw new MalformedKeyError(
    `${bytes.length} bytes are neither a DER SubjectPublicKeyInfo nor a raw public key (32-byte Ed25519, 33- or 65-byte EC point)`,
  );
}

/**
 * Reads a public key Granary can trust from PEM, DER, or raw hex/base64 forms (see the module comment). Throws
 * `MalformedKeyError` (unreadable), `UnsupportedKeyError` (RSA, other curves…, naming what was given) or
 * `WrongKeyTypeError` (a private key was given).
 */
export function parsePublicKey(input: string | Uint8Array, opts: ParseKeyOptions = {}): PublicKeyInfo {
  if (input.length > MAX_KEY_INPUT) throw new MalformedKeyError(`key input is ${input.length} bytes; at most ${MAX_KEY_INPUT}`);
  const text = asText(input);
  if (text === null) {
    if (input.length === 0) throw new MalformedKeyError('empty key');
    return fromBytes(Buffer.from(input as Uint8Array), opts.algorithm);
  }
  if (text.includes('-----BEGIN ')) {
    const blocks = pemBlocks(text);
    const pub = blocks.find((b) => PUBLIC_LABELS.has(b.label));
    if (pub) {
      if (pub.label === 'RSA PUBLIC KEY') throw new UnsupportedKeyError('an RSA key (PEM "RSA PUBLIC KEY")');
      return fromSpkiDer(pub.der, opts.algorithm);
    }
    if (blocks.some((b) => PRIVATE_LABELS.has(b.label))) throw privateGiven();
    if (blocks.some((b) => b.label === 'CERTIFICATE')) {
      throw new MalformedKeyError('this is a certificate, not a public key; extract its key with: openssl x509 -in cert.pem -pubkey -noout');
    }
    const labels = blocks.map((b) => b.label);
    throw new MalformedKeyError(
      labels.length ? `no public key in the PEM (found ${labels.map((l) => quote(l)).join(', ')})` : 'unterminated or malformed PEM',
    );
  }
  const bytes = decodeKeyText(text);
  if (!bytes) throw new MalformedKeyError(`not a PEM, hex or base64 public key: ${quote(text.trim())}`);
  return fromBytes(bytes, opts.algorithm);
}

/**
 * Reads a private key for signing: PKCS#8 or SEC1 PEM (optionally encrypted, with `passphrase`), or PKCS#8/SEC1 DER.
 * Refuses public keys (`WrongKeyTypeError`) and unsupported kinds (`UnsupportedKeyError`).
 */
export function parsePrivateKey(input: string | Uint8Array, opts: ParsePrivateKeyOptions = {}): PrivateKeyInfo {
  if (input.length > MAX_KEY_INPUT) throw new MalformedKeyError(`key input is ${input.length} bytes; at most ${MAX_KEY_INPUT}`);
  const text = asText(input);
  let key: KeyObject | undefined;
  let failure: unknown;
  if (text !== null && text.includes('-----BEGIN ')) {
    const labels = pemBlocks(text).map((b) => b.label);
    if (!labels.some((l) => PRIVATE_LABELS.has(l)) && labels.some((l) => PUBLIC_LABELS.has(l))) {
      throw new WrongKeyTypeError('this is a public key; signing needs the private key');
    }
    const encrypted = labels.includes('ENCRYPTED PRIVATE KEY') || /^Proc-Type:\s*4,\s*ENCRYPTED/m.test(text);
    if (encrypted && opts.passphrase === undefined) throw new MalformedKeyError('the private key is encrypted; give its passphrase');
    try {
      key = createPrivateKey({ key: text, format: 'pem', passphrase: opts.passphrase });
    } catch (e) {
      failure = e;
    }
  } else {
    const der = text === null ? Buffer.from(input as Uint8Array) : decodeKeyText(text);
    for (const type of ['pkcs8', 'sec1'] as const) {
      if (!der || key) break;
      try {
        key = createPrivateKey({ key: der, format: 'der', type, passphrase: opts.passphrase });
      } catch (e) {
        failure ??= e;
      }
    }
    if (!key && der) {
      try {
        createPublicKey({ key: der, format: 'der', type: 'spki' });
        failure = 'public';
      } catch {
        // not a public key either
      }
    }
  }
  if (failure === 'public') throw new WrongKeyTypeError('this is a public key; signing needs the private key');
  if (!key) {
    throw new MalformedKeyError(
      opts.passphrase !== undefined ? 'cannot read the private key (wrong passphrase or not a key)' : 'not a readable PKCS#8 or SEC1 private key',
      { cause: failure },
    );
  }
  const algorithm = classify(key);
  requireAlgorithm(algorithm, opts.algorithm);
  return { algorithm, keyObject: key, publicKey: publicKeyInfo(createPublicKey(key), algorithm) };
}
