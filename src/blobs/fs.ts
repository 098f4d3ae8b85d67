/**
 * Filesystem blob store driver. Use it through `createBlobStore` (index.ts), which wraps it in `withValidation`.
 *
 * Layout under `root` (drawn once, here):
 *   sha256/<first 2 hex>/<64 hex>     published blobs (sha512/<2>/<128 hex> likewise)
 *   _tmp/<random>                     puts in progress, or left by a crash (removed by `sweep`)
 *   _uploads/<id>                     upload sessions: the bytes appended so far, nothing else
 *
 * Durability: a blob is written to `_tmp`, hashed while streaming, fsync'ed, verified, then hard-linked into
 * place (atomic, and fails if the blob exists, so exactly one of several racing writers reports `created`; falls
 * back to rename where the filesystem has no hard links), and the shard directory is fsync'ed. Upload sessions are
 * appended without fsync; `commit` fsyncs before publishing the session file the same way.
 *
 * Upload sessions keep an in-process incremental hash (id → hash, size, mtime, inode) so `commit` need not
 * re-read the file; whenever that state is missing (restart, another node appended) or does not match the file,
 * `commit` re-hashes the file from disk. Appends to one session are serialised in-process; concurrent appends to
 * the same session from different processes are not guarded (a session belongs to one client).
 * After a crash mid-append the session keeps the bytes that reached the file — a prefix of what was sent — and
 * `size` reports it, so a client can resume from there; the digest check at `commit` refuses anything else.
 */
import { randomUUID } from 'node:crypto';
import { constants, createReadStream, type Stats } from 'node:fs';
import { chmod, link, lstat, mkdir, open, readdir, rename, rm, stat, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { addAbortSignal, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobFile, BlobStat, BlobStore, Digest, OpenOptions, PutOptions, PutResult, UploadStore } from './types.ts';
import { createDigester, DIGEST_ALGORITHMS, parseDigest, type Digester, type DigestAlgorithm, type ParsedDigest } from './digest.ts';
import {
  BlobNotFoundError,
  DigestMismatchError,
  SizeMismatchError,
  TooLargeError,
  UploadExistsError,
  UploadNotFoundError,
  UploadOffsetError,
} from './errors.ts';
import { isUploadId, resolveRange } from './base.ts';
import { writevAll } from '../util/writev-all.ts';

export interface FsBlobStoreOptions {
  /** Directory holding everything; created if missing. */
  root: string;
  /** Stream buffer size for reads and writes (default 1 MiB). */
  highWaterMark?: number;
}

/** Default age past which `sweep()` removes temp files. */
export const DEFAULT_TEMP_MAX_AGE_MS = 60 * 60 * 1000;

const MiB = 1024 * 1024;
const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const SHARD = /^[a-f0-9]{2}$/;
const HEX = /^[a-f0-9]+$/;

/** The on-disk layout of an fs blob store rooted at `root`. */
export function fsLayout(root: string) {
  const tmpDir = join(root, '_tmp');
  const uploadsDir = join(root, '_uploads');
  const algorithmDir = (algorithm: DigestAlgorithm): string => join(root, algorithm);
  const shardDir = (d: ParsedDigest): string => join(root, d.algorithm, d.hex.slice(0, 2));
  return {
    root,
    tmpDir,
    uploadsDir,
    algorithmDir,
    shardDir,
    blob: (d: ParsedDigest): string => join(shardDir(d), d.hex),
    upload: (id: string): string => join(uploadsDir, id),
    temp: (name: string): string => join(tmpDir, name),
  };
}

function errno(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? ((err as { code?: string }).code ?? undefined) : undefined;
}

async function statOrNull(path: string): Promise<Stats | null> {
  try {
    return await stat(path);
  } catch (err) {
    if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return null;
    throw err;
  }
}

async function readdirOrEmpty(path: string): Promise<string[]> {
  try {
    return await readdir(path);
  } catch (err) {
    if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return [];
    throw err;
  }
}

/** fsync a directory so a new entry in it survives a power loss; a no-op where directories cannot be opened. */
async function fsyncDir(path: string): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if (['EISDIR', 'EPERM', 'EACCES'].includes(errno(err) ?? '')) return;
    throw err;
  }
  try {
    await handle.sync();
  } catch (err) {
    if (!['EINVAL', 'EPERM', 'EBADF', 'ENOTSUP'].includes(errno(err) ?? '')) throw err;
  } finally {
    await handle.close();
  }
}


interface SinkLimits {
  maxBytes?: number;
  expectedSize?: number;
}

/**
 * Bytes a sink may have handed to the disk without knowing they landed. Writes carry explicit positions, so
 * several can be in flight at once: reading the socket, hashing and writing the file overlap instead of
 * taking turns (one write at a time left the server idle half of every upload).
 */
const MAX_INFLIGHT_BYTES = 8 * MiB;
const WRITE_BATCH_BYTES = MiB;

/**
 * Writable that hashes, counts and writes to an open file at increasing positions from `start`. Fails (before
 * writing the chunk) as soon as the count passes `maxBytes` (TooLargeError) or `expectedSize`
 * (SizeMismatchError). It finishes only when every write has landed; after a failure, `idle()` says when no
 * write is pending any more.
 */
class FileSink extends Writable {
  bytes = 0;
  readonly #handle: FileHandle;
  readonly #digester: Digester | null;
  readonly #limits: SinkLimits;
  #position: number;
  readonly #pending = new Set<Promise<void>>();
  #pendingBytes = 0;
  #error: Error | null = null;
  /** The stream's callback, held back while too many bytes are in flight. */
  #held: (() => void) | null = null;
  /** Chunks gathered into one write of at least WRITE_BATCH_BYTES: socket chunks are 64 KiB, and a thread-pool
   *  job per chunk costs more than the write itself. */
  #batch: Buffer[] = [];
  #batchBytes = 0;
  /** A smaller batch is written at the end of the event-loop turn, so a pause in the input never strands it. */
  #flushSoon: NodeJS.Immediate | null = null;

  constructor(handle: FileHandle, digester: Digester | null, limits: SinkLimits, highWaterMark: number, start = 0) {
    super({ highWaterMark });
    this.#handle = handle;
    this.#digester = digester;
    this.#limits = limits;
    this.#position = start;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#writeBuffers([chunk], chunk.length, callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    let total = 0;
    for (const c of chunks) total += c.chunk.length;
    this.#writeBuffers(
      chunks.map((c) => c.chunk),
      total,
      callback,
    );
  }

  /** A failed or abandoned write keeps nothing gathered but unwritten: the caller may truncate right after. */
  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#flushSoon) clearImmediate(this.#flushSoon);
    this.#flushSoon = null;
    this.#batch = [];
    this.#batchBytes = 0;
    callback(err);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#flush();
    this.idle().then(() => callback(this.#error), callback);
  }

  #writeBuffers(buffers: Buffer[], total: number, callback: (error?: Error | null) => void): void {
    if (this.#error) return callback(this.#error);
    const received = this.bytes + total;
    const { maxBytes, expectedSize } = this.#limits;
    if (maxBytes !== undefined && received > maxBytes) return callback(new TooLargeError(maxBytes));
    if (expectedSize !== undefined && received > expectedSize) {
      return callback(new SizeMismatchError(expectedSize, received));
    }
    this.bytes = received;
    if (this.#digester !== null) for (const b of buffers) this.#digester.update(b);
    for (const b of buffers) this.#batch.push(b);
    this.#batchBytes += total;
    if (this.#batchBytes >= WRITE_BATCH_BYTES) this.#flush();
    else this.#flushSoon ??= setImmediate(() => this.#flush());
    if (this.#pendingBytes < MAX_INFLIGHT_BYTES) callback();
    else this.#held = () => callback(this.#error);
  }

  /** Issues the gathered chunks as one positional write. */
  #flush(): void {
    if (this.#flushSoon) clearImmediate(this.#flushSoon);
    this.#flushSoon = null;
    if (this.#batchBytes === 0 || this.#error) return;
    const buffers = this.#batch;
    const total = this.#batchBytes;
    this.#batch = [];
    this.#batchBytes = 0;
    const position = this.#position;
    this.#position += total;
    this.#pendingBytes += total;
    const write: Promise<void> = writevAll(this.#handle, buffers, position)
      .catch((err: Error) => {
        this.#error ??= err;
      })
      .finally(() => {
        this.#pending.delete(write);
        this.#pendingBytes -= total;
        const held = this.#held;
        if (held && (this.#pendingBytes < MAX_INFLIGHT_BYTES || this.#error)) {
          this.#held = null;
          held();
        }
      });
    this.#pending.add(write);
  }

  /** Resolves once no write is pending on the file. */
  async idle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }
}

interface SessionState {
  digester: Digester;
  size: number;
  mtimeMs: number;
  ino: number;
}

function sameFile(state: SessionState, st: Stats): boolean {
  return state.size === st.size && state.mtimeMs === st.mtimeMs && state.ino === st.ino;
}

export async function createFsBlobStore(options: FsBlobStoreOptions): Promise<BlobStore> {
  if (typeof options?.root !== 'string' || options.root === '') throw new TypeError('fs blob store needs a root');
  const hwm = options.highWaterMark ?? MiB;
  const layout = fsLayout(options.root);

  await mkdir(layout.root, { recursive: true });
  for (const dir of [layout.tmpDir, layout.uploadsDir, ...DIGEST_ALGORITHMS.map(layout.algorithmDir)]) {
    await mkdir(dir, { recursive: true });
  }
  await fsyncDir(layout.root);

  /** Shard directories known to exist (skips a mkdir per put). */
  const knownDirs = new Set<string>();
  /** Temp names this process is writing: `sweep` leaves them alone whatever their age. */
  const activeTemps = new Set<string>();
  const sessions = new Map<string, SessionState>();
  const locks = new Map<string, Promise<void>>();

  /** Opens a session's file; a missing one is UploadNotFoundError (and its hash state is forgotten). */
  async function openSession(id: string, flags: string | number): Promise<FileHandle> {
    try {
      return await open(layout.upload(id), flags);
    } catch (err) {
      if (errno(err) === 'ENOENT') {
        sessions.delete(id);
        throw new UploadNotFoundError(id);
      }
      throw err;
    }
  }

  async function ensureShard(d: ParsedDigest): Promise<string> {
    const dir = layout.shardDir(d);
    if (!knownDirs.has(dir)) {
      const made = await mkdir(dir, { recursive: true });
      if (made !== undefined) await fsyncDir(layout.algorithmDir(d.algorithm));
      knownDirs.add(dir);
    }
    return dir;
  }

  /**
   * Publishes `src` (a verified, fsync'ed file) as blob `d`, then removes the `src` name.
   * Returns false when the blob already existed; its mtime is then refreshed so GC grace periods count from now.
   */
  async function publish(src: string, d: ParsedDigest): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      const dir = await ensureShard(d);
      const target = join(dir, d.hex);
      let created: boolean;
      try {
        await link(src, target);
        created = true;
      } catch (err) {
        const code = errno(err);
        if (code === 'EEXIST') {
          created = false;
        } else if (code === 'ENOENT' && attempt < 3) {
          knownDirs.delete(dir); // shard directory removed underneath us
          continue;
        } else if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS' || code === 'EOPNOTSUPP' || code === 'EXDEV' || code === 'EMLINK') {
          // no hard links here: rename (may overwrite an identical blob written concurrently)
          created = (await statOrNull(target)) === null;
          if (created) await rename(src, target);
        } else {
          throw err;
        }
      }
      if (created) {
        await fsyncDir(dir);
      } else {
        const now = new Date();
        try {
          await utimes(target, now, now);
        } catch (err) {
          // deleted between our link attempt and now: publish ours after all
          if (errno(err) === 'ENOENT' && attempt < 3) continue;
          // otherwise best effort (e.g. EPERM on a blob owned by another user): the blob is there
        }
      }
      await rm(src, { force: true });
      return created;
    }
  }

  /** Serialises work on one upload session within this process. */
  async function withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = locks.get(id);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous === undefined ? mine : previous.then(() => mine);
    locks.set(id, tail);
    try {
      if (previous !== undefined) await previous;
      return await fn();
    } finally {
      release();
      if (locks.get(id) === tail) locks.delete(id);
    }
  }

  async function hashFile(handle: FileHandle, algorithm: DigestAlgorithm): Promise<{ digest: Digest; size: number }> {
    const digester = createDigester(algorithm);
    const buf = Buffer.allocUnsafe(hwm);
    let position = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, position);
      if (bytesRead === 0) break;
      digester.update(buf.subarray(0, bytesRead));
      position += bytesRead;
    }
    return { digest: digester.digest(), size: position };
  }

  const uploads: UploadStore = {
    async create(id: string): Promise<void> {
      let handle: FileHandle;
      try {
        handle = await open(layout.upload(id), 'wx', 0o644);
      } catch (err) {
        if (errno(err) === 'EEXIST') throw new UploadExistsError(id);
        throw err;
      }
      try {
        const st = await handle.stat();
        sessions.set(id, { digester: createDigester('sha256'), size: 0, mtimeMs: st.mtimeMs, ino: st.ino });
      } finally {
        await handle.close();
      }
    },

    async size(id: string): Promise<number | null> {
      const st = await statOrNull(layout.upload(id));
      if (st === null) sessions.delete(id);
      return st?.size ?? null;
    },

    append(id: string, data: Readable, opts: { offset: number; maxBytes?: number; signal?: AbortSignal }) {
      return withLock(id, async () => {
        opts.signal?.throwIfAborted();
        // Positional writes (not O_APPEND): the sink keeps several in flight and they may land in any order.
        const handle = await openSession(id, constants.O_WRONLY);
        try {
          const before = await handle.stat();
          if (before.size !== opts.offset) throw new UploadOffsetError(before.size, opts.offset, { id });
          // The hash state to continue from, when this process saw every byte of the file.
          const state = sessions.get(id);
          let base: Digester | null = null;
          if (opts.offset === 0) base = createDigester('sha256');
          else if (state !== undefined && sameFile(state, before)) base = state.digester;
          sessions.delete(id); // re-established below once the file is in a known state
          const digester = base?.copy() ?? null;

          const sink = new FileSink(handle, digester, { maxBytes: opts.maxBytes }, hwm, before.size);
          try {
            await pipeline(data, sink, { signal: opts.signal });
          } catch (err) {
            await sink.idle();
            try {
              await handle.truncate(before.size);
              const restored = await handle.stat();
              if (base !== null && restored.size === before.size) {
                sessions.set(id, { digester: base, size: restored.size, mtimeMs: restored.mtimeMs, ino: restored.ino });
              }
            } catch {
              // size now uncertain: `size` reports the truth and `commit` re-hashes from disk
            }
            throw err;
          }
          const after = await handle.stat();
          if (digester !== null && after.size === before.size + sink.bytes) {
            sessions.set(id, { digester, size: after.size, mtimeMs: after.mtimeMs, ino: after.ino });
          }
          return after.size;
        } finally {
          await handle.close();
        }
      });
    },

    commit(id: string, expectedDigest: Digest, opts: { expectedSize?: number } = {}): Promise<PutResult> {
      const expected = parseDigest(expectedDigest);
      return withLock(id, async () => {
        const path = layout.upload(id);
        let handle: FileHandle | undefined = await openSession(id, 'r+');
        try {
          const st = await handle.stat();
          if (opts.expectedSize !== undefined && st.size !== opts.expectedSize) {
            // the session stays: the client may still append the missing bytes
            throw new SizeMismatchError(opts.expectedSize, st.size);
          }
          const state = sessions.get(id);
          sessions.delete(id);
          let actual: { digest: Digest; size: number };
          if (state !== undefined && state.digester.algorithm === expected.algorithm && sameFile(state, st)) {
            actual = { digest: state.digester.digest(), size: st.size };
          } else {
            actual = await hashFile(handle, expected.algorithm);
          }
          if (actual.digest !== expectedDigest) {
            await handle.close();
            handle = undefined;
            await rm(path, { force: true });
            throw new DigestMismatchError(expectedDigest, actual.digest);
          }
          await handle.sync();
          await handle.close();
          handle = undefined;
          const created = await publish(path, expected);
          return { digest: expectedDigest, size: actual.size, created };
        } finally {
          await handle?.close();
        }
      });
    },

    async abort(id: string): Promise<void> {
      sessions.delete(id);
      await rm(layout.upload(id), { force: true });
    },

    async *list(): AsyncIterable<{ id: string; size: number; modifiedAt: number }> {
      for (const name of await readdirOrEmpty(layout.uploadsDir)) {
        if (!isUploadId(name)) continue;
        const st = await statOrNull(layout.upload(name));
        if (st === null || !st.isFile()) continue;
        yield { id: name, size: st.size, modifiedAt: Math.trunc(st.mtimeMs) };
      }
    },
  };

  const store: BlobStore = {
    driver: 'fs',
    uploads,

    async stat(digest: Digest): Promise<BlobStat | null> {
      const st = await statOrNull(layout.blob(parseDigest(digest)));
      if (st === null || !st.isFile()) return null;
      return { digest, size: st.size, modifiedAt: Math.trunc(st.mtimeMs) };
    },

    async open(digest: Digest, opts: OpenOptions = {}): Promise<Readable> {
      const path = layout.blob(parseDigest(digest));
      opts.signal?.throwIfAborted();
      let handle: FileHandle;
      try {
        handle = await open(path, 'r');
      } catch (err) {
        if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') throw new BlobNotFoundError(digest);
        throw err;
      }
      try {
        const { size } = await handle.stat();
        const range = resolveRange(opts.range, size);
        const stream = handle.createReadStream({
          start: range?.start ?? 0,
          ...(range === undefined ? {} : { end: range.end }),
          highWaterMark: hwm,
          autoClose: true,
        });
        if (opts.signal !== undefined) addAbortSignal(opts.signal, stream);
        return stream;
      } catch (err) {
        await handle.close();
        throw err;
      }
    },

    async openFile(digest: Digest): Promise<BlobFile> {
      let handle: FileHandle;
      try {
        handle = await open(layout.blob(parseDigest(digest)), 'r');
      } catch (err) {
        if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') throw new BlobNotFoundError(digest);
        throw err;
      }
      let size: number;
      try {
        size = (await handle.stat()).size;
      } catch (err) {
        await handle.close();
        throw err;
      }
      let closed: Promise<void> | null = null;
      return {
        size,
        read: async (buffer, offset, length, position) => (await handle.read(buffer, offset, length, position)).bytesRead,
        close: () => (closed ??= handle.close()),
      };
    },

    async adoptFile(path: string, blob: { digest: Digest; size: number }): Promise<PutResult> {
      const d = parseDigest(blob.digest);
      const st = await stat(path);
      if (st.size !== blob.size) throw new SizeMismatchError(blob.size, st.size);
      try {
        await chmod(path, 0o644); // as put() leaves blobs: the adopted file may have been private to its writer
        return { ...blob, created: await publish(path, d) };
      } catch (err) {
        if (errno(err) !== 'EXDEV') throw err;
        // Another filesystem (a spool directory elsewhere): copy, verified as any put.
        const copied = await store.put(createReadStream(path), { expectedDigest: blob.digest, expectedSize: blob.size });
        await rm(path, { force: true });
        return copied;
      }
    },

    async put(data: Readable, opts: PutOptions = {}): Promise<PutResult> {
      const algorithm = opts.expectedDigest === undefined ? 'sha256' : parseDigest(opts.expectedDigest).algorithm;
      if (opts.maxBytes !== undefined && opts.expectedSize !== undefined && opts.expectedSize > opts.maxBytes) {
        throw new TooLargeError(opts.maxBytes);
      }
      opts.signal?.throwIfAborted();
      const name = randomUUID();
      const tmp = layout.temp(name);
      activeTemps.add(name);
      let handle: FileHandle | undefined;
      let sink: FileSink | undefined;
      try {
        handle = await open(tmp, 'wx', 0o644);
        const digester = createDigester(algorithm);
        sink = new FileSink(handle, digester, { maxBytes: opts.maxBytes, expectedSize: opts.expectedSize }, hwm);
        await pipeline(data, sink, { signal: opts.signal });
        const size = sink.bytes;
        if (opts.expectedSize !== undefined && size !== opts.expectedSize) {
          throw new SizeMismatchError(opts.expectedSize, size);
        }
        const digest = digester.digest();
        if (opts.expectedDigest !== undefined && digest !== opts.expectedDigest) {
          throw new DigestMismatchError(opts.expectedDigest, digest);
        }
        await handle.sync();
        await handle.close();
        handle = undefined;
        const created = await publish(tmp, parseDigest(digest));
        return { digest, size, created };
      } finally {
        await sink?.idle();
        await handle?.close().catch(() => {});
        await rm(tmp, { force: true }).catch(() => {});
        activeTemps.delete(name);
      }
    },

    async delete(digest: Digest): Promise<boolean> {
      try {
        await unlink(layout.blob(parseDigest(digest)));
        return true;
      } catch (err) {
        if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return false;
        throw err;
      }
    },

    async *list(): AsyncIterable<BlobStat> {
      for (const algorithm of DIGEST_ALGORITHMS) {
        const algorithmDir = layout.algorithmDir(algorithm);
        for (const shard of await readdirOrEmpty(algorithmDir)) {
          if (!SHARD.test(shard)) continue;
          for (const name of await readdirOrEmpty(join(algorithmDir, shard))) {
            if (name.length !== HEX_LENGTH[algorithm] || !name.startsWith(shard) || !HEX.test(name)) continue;
            const st = await statOrNull(join(algorithmDir, shard, name));
            if (st === null || !st.isFile()) continue;
            yield { digest: `${algorithm}:${name}`, size: st.size, modifiedAt: Math.trunc(st.mtimeMs) };
          }
        }
      }
    },

    async sweep(olderThanMs: number = DEFAULT_TEMP_MAX_AGE_MS): Promise<number> {
      const now = Date.now();
      let removed = 0;
      for (const name of await readdirOrEmpty(layout.tmpDir)) {
        if (activeTemps.has(name)) continue;
        const path = layout.temp(name);
        let st: Stats;
        try {
          st = await lstat(path);
        } catch (err) {
          if (errno(err) === 'ENOENT') continue;
          throw err;
        }
        if (olderThanMs > 0 && now - st.mtimeMs < olderThanMs) continue;
        await rm(path, { force: true, recursive: st.isDirectory() });
        removed++;
      }
      return removed;
    },

    /** Nothing to release but the in-process hash state (sessions re-hash from disk if used again). */
    async close(): Promise<void> {
      sessions.clear();
    },
  };
  return store;
}
