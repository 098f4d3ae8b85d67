/**
 * Test helper: keys, files and signatures made by the real `openssl` CLI during the run, in a temporary directory.
 * `OPENSSL_MISSING` is the skip reason when no `openssl` is on PATH (tests pass it to `{ skip }` so it shows).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const probe = spawnSync('openssl', ['version'], { encoding: 'utf8' });
export const OPENSSL_MISSING: string | false =
  probe.status === 0 ? false : 'openssl is not on PATH (install the Debian package "openssl") — the trust tests need its CLI';
export const OPENSSL_VERSION = probe.status === 0 ? probe.stdout.trim() : '';

/** Runs openssl; returns stdout; throws with stderr on failure. */
export function openssl(args: string[], input?: Buffer): Buffer {
  try {
    return execFileSync('openssl', args, { input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 16 * 1024 * 1024 });
  } catch (e) {
    const err = e as { stderr?: Buffer; status?: number };
    throw new Error(`openssl ${args.join(' ')} failed (${err.status}): ${err.stderr?.toString() ?? ''}`);
  }
}

/** Like `openssl`, but returns status and output instead of throwing (for `-verify` runs that may fail). */
export function opensslStatus(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

export type KeyKind = 'secp256k1' | 'prime256v1' | 'ed25519' | 'ed448' | 'rsa' | 'secp384r1';

export interface KeyFiles {
  /** Private key as openssl wrote it (SEC1 `EC PRIVATE KEY` for EC, PKCS#8 otherwise). */
  priv: string;
  /** SPKI PEM public key. */
  pub: string;
}

export const N = {
  secp256k1: 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n,
  prime256v1: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
} as const;

/** A scratch directory with openssl-made keys (memoised per name). Call `cleanup()` in `after`. */
export class Lab {
  readonly dir = mkdtempSync(join(tmpdir(), 'granary-trust-'));
  readonly #keys = new Map<string, KeyFiles>();

  path(name: string): string {
    return join(this.dir, name);
  }

  write(name: string, data: Uint8Array | string): string {
    const p = this.path(name);
    writeFileSync(p, data);
    return p;
  }

  read(name: string): Buffer {
    return readFileSync(this.path(name));
  }

  key(kind: KeyKind, name: string = kind): KeyFiles {
    let k = this.#keys.get(name);
    if (k) return k;
    const priv = this.path(`${name}.key.pem`);
    const pub = this.path(`${name}.pub.pem`);
    if (kind === 'secp256k1' || kind === 'prime256v1' || kind === 'secp384r1') {
      openssl(['ecparam', '-name', kind, '-genkey', '-noout', '-out', priv]);
      openssl(['ec', '-in', priv, '-pubout', '-out', pub]);
    } else {
      const args = kind === 'rsa' ? ['-algorithm', 'rsa', '-pkeyopt', 'rsa_keygen_bits:2048'] : ['-algorithm', kind];
      openssl(['genpkey', ...args, '-out', priv]);
      openssl(['pkey', '-in', priv, '-pubout', '-out', pub]);
    }
    k = { priv, pub };
    this.#keys.set(name, k);
    return k;
  }

  /** `openssl dgst -sha256 -sign key -hex file` → its stdout line, e.g. `EC-SHA2-256(/tmp/…/f)= 3045…`. */
  signHex(key: string, file: string): string {
    return openssl(['dgst', '-sha256', '-sign', key, '-hex', file]).toString('utf8');
  }

  /** `openssl dgst -sha256 -sign key file` → binary DER. */
  signDer(key: string, file: string): Buffer {
    return openssl(['dgst', '-sha256', '-sign', key, file]);
  }

  /** Writes `sig` and runs `openssl dgst -sha256 -verify pub -signature sig file`; true on "Verified OK". */
  opensslVerifiesEcdsa(pub: string, file: string, sig: Buffer): boolean {
    const s = this.write(`sig-${process.hrtime.bigint()}.der`, sig);
    const r = opensslStatus(['dgst', '-sha256', '-verify', pub, '-signature', s, file]);
    return r.status === 0 && r.out.includes('Verified OK');
  }

  /** `openssl pkeyutl -verify -rawin` of an Ed25519 signature over `message` (a file path). */
  opensslVerifiesEd25519(pub: string, message: string, sig: Buffer): boolean {
    const s = this.write(`sig-${process.hrtime.bigint()}.bin`, sig);
    const r = opensslStatus(['pkeyutl', '-verify', '-pubin', '-inkey', pub, '-rawin', '-in', message, '-sigfile', s]);
    return r.status === 0 && r.out.includes('Signature Verified Successfully');
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** r and s of a DER signature as OpenSSL itself reads them (`openssl asn1parse`), independent of src/trust/der.ts. */
export function asn1RS(lab: Lab, der: Buffer): { r: bigint; s: bigint } {
  const out = openssl(['asn1parse', '-inform', 'DER', '-in', lab.write(`asn1-${process.hrtime.bigint()}.der`, der)]).toString();
  const ints = [...out.matchAll(/INTEGER\s+:([0-9A-F]+)/g)].map((m) => BigInt(`0x${m[1]}`));
  if (ints.length !== 2) throw new Error(`asn1parse found ${ints.length} integers:\n${out}`);
  return { r: ints[0], s: ints[1] };
}

/** A test-local minimal DER encoder (kept apart from the library's so each checks the other). */
export function derOf(r: bigint, s: bigint): Buffer {
  const int = (v: bigint) => {
    let h = v.toString(16);
    if (h.length % 2) h = `0${h}`;
    if (parseInt(h.slice(0, 2), 16) >= 0x80) h = `00${h}`;
    const b = Buffer.from(h, 'hex');
    return Buffer.concat([Buffer.from([2, b.length]), b]);
  };
  const body = Buffer.concat([int(r), int(s)]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

/** 32-byte big-endian. */
export const be32 = (v: bigint): Buffer => Buffer.from(v.toString(16).padStart(64, '0'), 'hex');
