/**
 * Positional vectored writes that finish: loops over partial writes and batches of at most 512 buffers (below
 * every platform's IOV_MAX). For the blob store's files and the proxy's spool files alike.
 */
import type { FileHandle } from 'node:fs/promises';

/** Writes every byte of `buffers` at `position`, looping over partial writes (and IOV_MAX-sized batches). */
export async function writevAll(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let bufs = buffers;
  let pos = position;
  while (bufs.length > 0) {
    const batch = bufs.length > 512 ? bufs.slice(0, 512) : bufs;
    const { bytesWritten } = await handle.writev(batch, pos);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    pos += bytesWritten;
    let n = bytesWritten;
    const rest: Buffer[] = [];
    for (const b of bufs) {
      if (n >= b.length) {
        n -= b.length;
        continue;
      }
      rest.push(n > 0 ? b.subarray(n) : b);
      n = 0;
    }
    bufs = rest;
  }
}
