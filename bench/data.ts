/**
 * Generated benchmark data: streams cut from fixed 1 MiB blocks, so nothing large is held in memory, generating
 * costs next to nothing, and the same range of the same stream always yields the same bytes. Shared by
 * bench/blobs.ts (one random block, chunk number stamped in) and the OCI benchmark (deterministic rings).
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { MiB } from './http-client.ts';

/** `size` bytes in 1 MiB chunks: chunk n (counted from `startMiB`) is `chunk(n, len)`, len < MiB only for the last. */
export function mibStream(size: number, startMiB: number, chunk: (n: number, len: number) => Buffer): Readable {
  let sent = 0;
  let n = startMiB;
  return new Readable({
    highWaterMark: MiB,
    read() {
      if (sent >= size) return void this.push(null);
      const len = Math.min(MiB, size - sent);
      sent += len;
      this.push(chunk(n++, len));
    },
  });
}

/** A fixed pseudo-random 1 MiB block (sha256 chain), the same in every run. */
const BLOCK = (() => {
  const b = Buffer.alloc(MiB);
  let h = createHash('sha256').update('granary-bench').digest();
  for (let off = 0; off < MiB; off += h.length) {
    h.copy(b, off);
    h = createHash('sha256').update(h).digest();
  }
  return b;
})();

const RING = 16;
const rings = new Map<number, Buffer[]>();

/** The 16 distinct 1 MiB chunks a stream cycles through: BLOCK stamped with the salt and the chunk's index. */
function ring(salt: number): Buffer[] {
  let r = rings.get(salt);
  if (!r) {
    r = Array.from({ length: RING }, (_, i) => {
      const b = Buffer.from(BLOCK);
      b.writeUInt32LE(salt, 0);
      b.writeUInt32LE(i, 4);
      return b;
    });
    rings.set(salt, r);
  }
  return r;
}

/**
 * Bytes [startMiB·MiB, startMiB·MiB + size) of the stream named `salt`: chunk n is ring(salt)[n mod 16].
 * The chunks are never written after creation, so they are pushed without copying: generating costs nothing.
 */
export function source(size: number, salt: number, startMiB = 0): Readable {
  const chunks = ring(salt);
  return mibStream(size, startMiB, (n, len) => (len === MiB ? chunks[n % RING] : chunks[n % RING].subarray(0, len)));
}

export async function sha256Of(stream: Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const c of stream) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}
