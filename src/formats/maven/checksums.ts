/**
 * Maven checksums (.md5/.sha1/.sha256/.sha512) are computed by the server, never trusted from a client: a
 * pass-through stream hashes the bytes on their way into the blob store (one pass, nothing buffered), and the
 * hex values are kept in the asset's metadata. Uploaded checksum files are only compared against them.
 */
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { GranaryError } from '../../server/errors.ts';
import { CHECKSUM_ALGOS, CHECKSUM_HEX_LENGTH, type ChecksumAlgo } from './path.ts';

export type Checksums = Record<ChecksumAlgo, string>;

/** The algorithms hashed on the way in; SHA-256 is the blob store's own digest and is not computed twice. */
const STREAMED = ['md5', 'sha1', 'sha512'] as const;

/** Wraps `source`; `result(sha256)` gives every checksum once the stream has ended. */
export function hashingStream(source: Readable): { stream: Readable; result: (sha256Digest: string) => Checksums } {
  const hashes = STREAMED.map((a) => createHash(a));
  let done: string[] | null = null;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      for (const h of hashes) h.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      done = hashes.map((h) => h.digest('hex'));
      cb();
    },
  });
  // Errors of the source (client gone) must reach the blob store so it discards the partial write.
  source.once('error', (e) => stream.destroy(e));
  source.pipe(stream);
  return {
    stream,
    result: (sha256Digest) => {
      if (!done) throw new GranaryError('INTERNAL', 'checksums read before the upload ended');
      return { md5: done[0], sha1: done[1], sha256: sha256Digest.replace(/^sha256:/, ''), sha512: done[2] };
    },
  };
}

export function checksumsOf(data: Buffer | string): Checksums {
  return Object.fromEntries(CHECKSUM_ALGOS.map((a) => [a, createHash(a).update(data).digest('hex')])) as Checksums;
}

/** The checksums stored with an asset, when all are there (assets written by Granary's Maven format). */
export function storedChecksums(metadata: Record<string, unknown>): Checksums | null {
  const c = metadata.checksums as Partial<Checksums> | undefined;
  if (!c || CHECKSUM_ALGOS.some((a) => typeof c[a] !== 'string')) return null;
  return c as Checksums;
}

/**
 * The hex value of an uploaded checksum file. Tools write either the bare hex or `hex  filename` (sha1sum
 * style); anything else is refused rather than guessed at.
 */
export function parseChecksumBody(body: string, algo: ChecksumAlgo): string {
  const first = body.trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  if (first.length !== CHECKSUM_HEX_LENGTH[algo] || !/^[0-9a-f]+$/.test(first)) {
    throw new GranaryError('BAD_REQUEST', `the body is not a ${algo} checksum (${CHECKSUM_HEX_LENGTH[algo]} hex digits)`);
  }
  return first;
}

/** Checksum headers a client may send with an upload (Maven Resolver, Gradle, curl users). */
export function checksumHeaders(headers: Record<string, string | string[] | undefined>): Partial<Checksums> {
  const out: Partial<Checksums> = {};
  for (const a of CHECKSUM_ALGOS) {
    const v = headers[`x-checksum-${a}`];
    const s = Array.isArray(v) ? v[0] : v;
    if (s) out[a] = s.trim().toLowerCase();
  }
  return out;
}

/** Constant-time-free compare is fine here: checksums are public values, not secrets. */
export function mismatch(expected: Partial<Checksums>, actual: Checksums): ChecksumAlgo | null {
  for (const a of CHECKSUM_ALGOS) if (expected[a] !== undefined && expected[a] !== actual[a]) return a;
  return null;
}
