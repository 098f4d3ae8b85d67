/**
 * Single-flight downloads. The first request for an uncached object starts a flight: one upstream GET whose
 * body is written to a spool file on local disk. Every client asking for the object meanwhile reads that file
 * from its start while it grows ("tails" it), so late joiners get every byte, nobody waits for the whole
 * download, and nothing is held in memory beyond one chunk per reader. The spool then becomes the cached blob:
 * adopted by a store with local files (hashed while written, fsynced, linked into place), or tailed by the blob
 * store's own writer like another client (s3).
 *
 * Clients' streams deliver their last byte only once the blob store has verified the digest and the asset is
 * bound; if the upstream breaks off, or the bytes do not match, every reader fails and nothing is cached. The
 * spool file is removed as soon as the flight is over (readers that opened it keep their descriptor).
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdirSync, openSync, closeSync, read as fsRead, unlink } from 'node:fs';
import { copyFile, link, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDigester, type DigestAlgorithm } from '../../blobs/digest.ts';
import { TooLargeError } from '../../blobs/errors.ts';
import { writevAll } from '../../util/writev-all.ts';
import type { BlobFile } from '../../blobs/types.ts';
import { copyFileRange, type Growing } from '../../server/send-file.ts';

export interface SpoolOptions {
  onBytes?: (n: number) => void;
  /** Hash the bytes as written, and fsync the spool at the end (for adoption into the blob store). */
  hash?: DigestAlgorithm;
  /** Fail with TooLargeError past this many bytes. */
  maxBytes?: number;
}

export interface SpoolResult {
  size: number;
  /** With `hash`: the digest of the spooled bytes. */
  digest?: string;
}

const CHUNK = 1024 * 1024;
/** Upstream bytes buffered while the spool write before them is under way (then written in one writev). */
const SPOOL_BUFFER = 4 * 1024 * 1024;

export class Flight extends EventEmitter {
  readonly file: string;
  written = 0;
  /** Upstream body fully received. */
  ended = false;
  /** Stored and verified (true) or failed (error set). */
  committed = false;
  error: Error | null = null;
  /** Resolves when the flight is over (stored or failed); never rejects. */
  readonly over: Promise<void>;
  #resolveOver!: () => void;

  constructor(dir: string) {
    super();
    this.setMaxListeners(0);
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, `${randomUUID()}.spool`);
    closeSync(openSync(this.file, 'wx', 0o600));
    this.over = new Promise((r) => (this.#resolveOver = r));
  }

  /**
   * Copies the upstream body into the spool; resolves when it ended, rejects when it broke off (or passed
   * `maxBytes`). Chunks that arrive while a write is under way are written together (writev), so the spool keeps
   * up with a fast upstream. `onBytes` is told of every batch written (metrics). With `hash`, the bytes are hashed
   * in the order they are written and the file is fsynced at the end: the spool can then become the cached blob
   * itself (`BlobStore.adoptFile`) instead of being copied into the store.
   */
  async spool(body: Readable, o: SpoolOptions = {}): Promise<SpoolResult> {
    const fh: FileHandle = await open(this.file, 'r+');
    const flight = this;
    const digester = o.hash === undefined ? null : createDigester(o.hash);
    const put = async (bufs: Buffer[], cb: (e?: Error | null) => void) => {
      try {
        const total = bufs.reduce((n, b) => n + b.length, 0);
        if (o.maxBytes !== undefined && flight.written + total > o.maxBytes) throw new TooLargeError(o.maxBytes);
        for (const b of bufs) digester?.update(b);
        await writevAll(fh, bufs, flight.written);
        flight.written += total;
        o.onBytes?.(total);
        flight.emit('progress');
        cb();
      } catch (e) {
        cb(e as Error);
      }
    };
    const sink = new Writable({
      highWaterMark: SPOOL_BUFFER,
      write: (chunk: Buffer, _enc, cb) => void put([chunk], cb),
      writev: (chunks, cb) => void put(chunks.map((c) => c.chunk as Buffer), cb),
    });
    try {
      await pipeline(body, sink);
      if (digester !== null) await fh.datasync();
      this.ended = true;
      this.emit('progress');
      return { size: this.written, ...(digester === null ? {} : { digest: digester.digest() }) };
    } finally {
      await fh.close();
    }
  }

  /**
   * A second name for the finished spool, for the blob store to adopt (and so take away): the spool's own name
   * stays until the flight is over, so a client joining between adoption and commit still opens it.
   */
  async handOver(): Promise<string> {
    const name = this.file.replace(/\.spool$/, '.adopt.spool');
    try {
      await link(this.file, name);
    } catch {
      await copyFile(this.file, name); // a filesystem without hard links: a copy costs a write, nothing else
    }
    return name;
  }

  commit(): void {
    this.committed = true;
    this.#finish();
  }

  fail(e: Error): void {
    if (this.committed || this.error) return;
    this.error = e;
    this.#finish();
  }

  #finish(): void {
    this.emit('progress');
    unlink(this.file, () => {});
    this.#resolveOver();
  }

  /**
   * Copies the spool's `size` bytes into `dest` (an HTTP response) as they arrive, through reused buffers
   * (server/send-file.ts) rather than a stream allocating one per chunk; like `reader(true)`, the last byte waits
   * until the asset is stored. Fails (and cuts `dest` short) when the flight fails.
   */
  async copyTo(dest: Writable, size: number): Promise<void> {
    const fd = openSync(this.file, 'r');
    const file: BlobFile = {
      size,
      read: (buf, offset, length, position) => new Promise((resolve, reject) => fsRead(fd, buf, offset, length, position, (e, n) => (e ? reject(e) : resolve(n)))),
      close: async () => {},
    };
    const growing: Growing = {
      readable: () => (this.committed ? this.written : this.written - 1),
      more: () => {
        if (this.error) return Promise.reject(this.error);
        return new Promise((resolve, reject) => this.once('progress', () => (this.error ? reject(this.error) : resolve())));
      },
    };
    try {
      await copyFileRange(file, 0, size, dest, growing);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * A stream of the spool from byte 0. `untilCommitted`: hold the end until the asset is stored (client
   * readers, so a client never sees a clean end of bytes that turned out wrong); the blob store's reader ends
   * when the upstream body did.
   */
  reader(untilCommitted: boolean): Readable {
    const fd = openSync(this.file, 'r');
    let pos = 0;
    let closed = false;
    const flight = this;
    let waiting: (() => void) | null = null;
    const onProgress = () => {
      const w = waiting;
      waiting = null;
      w?.();
    };
    flight.on('progress', onProgress);
    const cleanup = () => {
      if (closed) return;
      closed = true;
      flight.off('progress', onProgress);
      closeSync(fd);
    };
    return new Readable({
      highWaterMark: CHUNK,
      read() {
        const step = () => {
          if (flight.error) return this.destroy(flight.error);
          // A client holds back the last byte until the asset is stored: with a Content-Length, the last byte is
          // what tells the client the body is complete, and it must not get that for bytes that turn out wrong.
          const available = untilCommitted && !flight.committed ? flight.written - 1 : flight.written;
          if (pos < available) {
            const buf = Buffer.allocUnsafe(Math.min(CHUNK, available - pos));
            fsRead(fd, buf, 0, buf.length, pos, (err, n) => {
              if (err) return this.destroy(err);
              pos += n;
              this.push(n === buf.length ? buf : buf.subarray(0, n));
            });
            return;
          }
          if (pos >= flight.written && flight.ended && (!untilCommitted || flight.committed)) {
            this.push(null);
            return;
          }
          waiting = step;
        };
        step();
      },
      destroy(err, cb) {
        cleanup();
        cb(err);
      },
    }).on('end', cleanup);
  }
}

/** Spool files a crash left behind: anything older than an hour is no flight of a live process. */
async function sweepSpool(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const n of names) {
    if (!n.endsWith('.spool')) continue;
    const st = await stat(join(dir, n)).catch(() => null);
    if (st && Date.now() - st.mtimeMs > 3_600_000) await rm(join(dir, n), { force: true });
  }
}

/** In-flight downloads by key; a flight leaves the map when it is over. */
export class Flights {
  readonly #dir: string;
  readonly #map = new Map<string, Flight>();
  constructor(dir: string) {
    this.#dir = dir;
    void sweepSpool(dir);
  }
  get(key: string): Flight | undefined {
    return this.#map.get(key);
  }
  start(key: string): Flight {
    const f = new Flight(this.#dir);
    this.#map.set(key, f);
    void f.over.then(() => this.#map.delete(key));
    return f;
  }
  get size(): number {
    return this.#map.size;
  }
}
