/**
 * Blob store throughput: put, full read and upload (append + commit) of a generated stream, in MB/s.
 * Not run by tests.
 *
 *   node bench/blobs.ts [sizeMiB=1024] [root=<fresh temp dir>]
 *
 * The source repeats one random 1 MiB block with the chunk number stamped in, so generating it costs next to
 * nothing, every chunk differs, and the same range always yields the same bytes within a run.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createBlobStore } from '../src/blobs/index.ts';
import { mibStream } from './data.ts';

const MiB = 1024 * 1024;

const block = randomBytes(MiB);

/** Bytes [startMiB * MiB, startMiB * MiB + size) of this run's data. */
function source(size: number, startMiB = 0): Readable {
  return mibStream(size, startMiB, (n, len) => {
    const chunk = Buffer.from(block.subarray(0, len));
    if (len >= 8) chunk.writeBigUInt64LE(BigInt(n), 0);
    return chunk;
  });
}

function sink(): Writable {
  return new Writable({ highWaterMark: MiB, write: (_chunk, _enc, cb) => cb() });
}

async function timed(label: string, bytes: number, fn: () => Promise<unknown>): Promise<void> {
  const t0 = performance.now();
  await fn();
  const s = (performance.now() - t0) / 1000;
  console.log(`${label.padEnd(26)} ${(bytes / MiB / s).toFixed(0).padStart(6)} MB/s  (${s.toFixed(2)} s)`);
}

async function main(): Promise<void> {
  const sizeMiB = Number(process.argv[2] ?? 1024);
  const size = sizeMiB * MiB;
  const root = process.argv[3] ?? (await mkdtemp(join(tmpdir(), 'granary-bench-')));
  const own = process.argv[3] === undefined;
  const store = await createBlobStore({ driver: 'fs', root });
  try {
    console.log(`fs blob store at ${root}, ${sizeMiB} MiB`);
    let digest = '';
    await timed('put (sha256)', size, async () => {
      digest = (await store.put(source(size))).digest;
    });
    await timed('open + read', size, async () => pipeline(await store.open(digest), sink()));
    await timed('put again (dedup)', size, () => store.put(source(size)));
    await store.delete(digest);

    const id = 'bench-upload-1';
    const part = Math.ceil(sizeMiB / 8) * MiB;
    await store.uploads.create(id);
    await timed('upload (8 appends)', size, async () => {
      for (let offset = 0; offset < size; offset += part) {
        await store.uploads.append(id, source(Math.min(part, size - offset), offset / MiB), { offset });
      }
    });
    await timed('commit (in-process hash)', size, () => store.uploads.commit(id, digest));
    await store.delete(digest);

    await store.uploads.create(id);
    await store.uploads.append(id, source(size), { offset: 0 });
    const restarted = await createBlobStore({ driver: 'fs', root });
    await timed('commit (re-hash on disk)', size, () => restarted.uploads.commit(id, digest));
    await restarted.close();
  } finally {
    await store.close();
    if (own) await rm(root, { recursive: true, force: true });
  }
}

await main();
