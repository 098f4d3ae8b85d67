/**
 * The disk's own limit for a durable blob write: stream N bytes into a file in the benchmark's data directory,
 * then fsync it — what any registry that keeps its promise ("a 201 means the blob survives a power cut") pays
 * per upload. On a VM disk this, not hashing or HTTP, is usually what bounds upload throughput.
 */
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

export async function durableWriteMBps(dir: string, data: Readable, bytes: number): Promise<number> {
  const path = join(dir, 'disk-ceiling.tmp');
  const t0 = performance.now();
  const fh = await open(path, 'w');
  try {
    let pos = 0;
    for await (const chunk of data) {
      const c = chunk as Buffer;
      await fh.write(c, 0, c.length, pos);
      pos += c.length;
    }
    if (pos !== bytes) throw new Error(`disk ceiling wrote ${pos} bytes, expected ${bytes}`);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  await rm(path, { force: true });
  return bytes / 1e6 / seconds;
}
