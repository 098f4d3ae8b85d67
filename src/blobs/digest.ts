/**
 * Digests: the only names blobs have. Parsing is strict (lower-case hex of the exact length) because keys and
 * paths are derived from the result; nothing else in the blob store may look inside a digest string.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Digest } from './types.ts';
import { InvalidDigestError } from './errors.ts';

export const DIGEST_ALGORITHMS = ['sha256', 'sha512'] as const;
export type DigestAlgorithm = (typeof DIGEST_ALGORITHMS)[number];

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  /** Lower-case hex: 64 characters for sha256, 128 for sha512. */
  hex: string;
}

const SHA256 = /^sha256:[a-f0-9]{64}$/;
const SHA512 = /^sha512:[a-f0-9]{128}$/;

/** Splits a digest into algorithm and hex; throws InvalidDigestError for anything but the two exact forms. */
export function parseDigest(s: unknown): ParsedDigest {
  if (typeof s === 'string') {
    if (SHA256.test(s)) return { algorithm: 'sha256', hex: s.slice(7) };
    if (SHA512.test(s)) return { algorithm: 'sha512', hex: s.slice(7) };
  }
  throw new InvalidDigestError(s);
}

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && (SHA256.test(s) || SHA512.test(s));
}

export function isDigestAlgorithm(s: unknown): s is DigestAlgorithm {
  return s === 'sha256' || s === 'sha512';
}

/** Digest of an in-memory value (small things only: manifests, metadata, tests). Strings are hashed as UTF-8. */
export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** Incremental hasher producing a Digest string. */
export interface Digester {
  readonly algorithm: DigestAlgorithm;
  update(chunk: Uint8Array | string): this;
  /** Finishes the hash; the digester cannot be used afterwards. */
  digest(): Digest;
  /** An independent digester with the same state (for rolling back a failed append). */
  copy(): Digester;
}

class NodeDigester implements Digester {
  readonly algorithm: DigestAlgorithm;
  readonly #hash: Hash;

  constructor(algorithm: DigestAlgorithm, hash: Hash) {
    this.algorithm = algorithm;
    this.#hash = hash;
  }

  update(chunk: Uint8Array | string): this {
    this.#hash.update(chunk);
    return this;
  }

  digest(): Digest {
    return `${this.algorithm}:${this.#hash.digest('hex')}`;
  }

  copy(): Digester {
    return new NodeDigester(this.algorithm, this.#hash.copy());
  }
}

export function createDigester(algorithm: DigestAlgorithm = 'sha256'): Digester {
  if (!isDigestAlgorithm(algorithm)) throw new TypeError(`unsupported digest algorithm ${String(algorithm)}`);
  return new NodeDigester(algorithm, createHash(algorithm));
}
