/**
 * The wrapper every driver runs inside (`createBlobStore` applies it; nothing calls a bare driver).
 *
 * - Validates digests, upload ids and numeric options before the driver sees them, so a driver never derives a
 *   key or path from untrusted input.
 * - Tags every typed error with the driver name and wraps stray backend errors (EIO, SDK errors…) in a
 *   `BlobStoreError` (code BLOB_STORE_ERROR) that keeps the original as `cause`. Errors that are the caller's own
 *   (its source stream failing, its AbortSignal, a premature close) pass through untouched.
 * - Optional metrics hooks: bytes in/out and per-call timing.
 *
 * It also exports the small helpers drivers share (`resolveRange`, `isUploadId`).
 */
import { pipeline, Transform, type Readable } from 'node:stream';
import type { BlobFile, BlobStat, BlobStore, ByteRange, Digest, OpenOptions, PutOptions, PutResult, UploadStore } from './types.ts';
import { parseDigest } from './digest.ts';
import { BLOB_ERROR_CODES, BlobStoreError, InvalidUploadIdError, RangeNotSatisfiableError } from './errors.ts';

export const UPLOAD_ID_PATTERN = /^[A-Za-z0-9_-]{8,128}$/;

export function isUploadId(s: unknown): s is string {
  return typeof s === 'string' && UPLOAD_ID_PATTERN.test(s);
}

export type BlobOperation =
  | 'stat'
  | 'open'
  | 'put'
  | 'delete'
  | 'list'
  | 'sweep'
  | 'close'
  | 'uploads.create'
  | 'uploads.size'
  | 'uploads.append'
  | 'uploads.commit'
  | 'uploads.abort'
  | 'uploads.list';

/** Metrics hooks; each is optional, called synchronously, and must not throw (exceptions are ignored). */
export interface BlobStoreHooks {
  /** Bytes accepted by a successful put or append. */
  onBytesIn?(bytes: number, driver: string): void;
  /** Bytes delivered by a stream returned from `open` (counted as they pass; costs one extra stream hop). */
  onBytesOut?(bytes: number, driver: string): void;
  /** Every call, when it settles (for `open`: when the stream is returned; for `list`: when iteration ends). */
  onOperation?(event: { driver: string; op: BlobOperation; ms: number; error?: unknown }): void;
}

/**
 * Resolves an HTTP-style inclusive range against a blob size: undefined = whole blob; `end` past the blob is
 * clamped to its last byte. Throws RangeNotSatisfiableError when start ≥ size, end < start, or either is not a
 * non-negative safe integer. Drivers call it once they know the size.
 */
export function resolveRange(range: ByteRange | undefined, size: number): { start: number; end: number } | undefined {
  if (range === undefined) return undefined;
  const { start, end } = range;
  const badStart = !Number.isSafeInteger(start) || start < 0;
  const badEnd = end !== undefined && (!Number.isSafeInteger(end) || end < 0);
  if (badStart || badEnd || start >= size || (end !== undefined && end < start)) {
    throw new RangeNotSatisfiableError(size, range);
  }
  return { start, end: end === undefined ? size - 1 : Math.min(end, size - 1) };
}

const WRAPPED = Symbol('granary.blobs.validated');

function checkCount(name: string, value: number | undefined): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
    throw new RangeError(`${name} must be a non-negative integer, got ${String(value)}`);
  }
}

function checkUploadId(id: unknown): void {
  if (!isUploadId(id)) throw new InvalidUploadIdError(id);
}

/** True for errors that belong to the caller rather than the backend. */
function isCallerError(err: unknown, source?: Readable, signal?: AbortSignal): boolean {
  if (signal?.aborted && err === signal.reason) return true;
  if (source !== undefined && err === source.errored) return true;
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; code?: unknown };
  return e.name === 'AbortError' || e.code === 'ERR_STREAM_PREMATURE_CLOSE';
}

/** Wraps a driver; idempotent (wrapping a wrapped store returns it unchanged). */
export function withValidation(store: BlobStore, hooks: BlobStoreHooks = {}): BlobStore {
  if ((store as unknown as Record<symbol, unknown>)[WRAPPED]) return store;
  const driver = store.driver;

  const normalize = (err: unknown, source?: Readable, signal?: AbortSignal): unknown => {
    if (err instanceof BlobStoreError) {
      if (err.driver === undefined) err.driver = driver;
      return err;
    }
    if (isCallerError(err, source, signal)) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new BlobStoreError(BLOB_ERROR_CODES.BLOB_STORE_ERROR, `${driver} blob store: ${message}`, {
      driver,
      cause: err,
    });
  };

  const safely = (fn: () => void): void => {
    try {
      fn();
    } catch {
      // hooks must not break storage
    }
  };

  const report = (op: BlobOperation, t0: number, error?: unknown): void => {
    const onOperation = hooks.onOperation;
    if (onOperation === undefined) return;
    const ms = performance.now() - t0;
    safely(() => onOperation(error === undefined ? { driver, op, ms } : { driver, op, ms, error }));
  };

  /** Runs validation (errors tagged, not reported as driver failures) then the driver call. */
  async function call<T>(
    op: BlobOperation,
    validate: () => void,
    run: () => Promise<T>,
    ctx: { source?: Readable; signal?: AbortSignal } = {},
  ): Promise<T> {
    try {
      validate();
    } catch (err) {
      // typed errors get the driver name; argument errors (RangeError/TypeError) are the caller's bug, kept as is
      if (err instanceof BlobStoreError && err.driver === undefined) err.driver = driver;
      throw err;
    }
    const t0 = performance.now();
    try {
      const result = await run();
      report(op, t0);
      return result;
    } catch (err) {
      const e = normalize(err, ctx.source, ctx.signal);
      report(op, t0, e);
      throw e;
    }
  }

  async function* iterate<T>(op: BlobOperation, source: () => AsyncIterable<T>): AsyncGenerator<T> {
    const t0 = performance.now();
    let error: unknown;
    try {
      yield* source();
    } catch (err) {
      error = normalize(err);
      throw error;
    } finally {
      report(op, t0, error); // also when the consumer stops early
    }
  }

  const countOut = (stream: Readable): Readable => {
    const onBytesOut = hooks.onBytesOut;
    if (onBytesOut === undefined) return stream;
    let n = 0;
    const counter = new Transform({
      readableHighWaterMark: stream.readableHighWaterMark,
      writableHighWaterMark: stream.readableHighWaterMark,
      transform(chunk: Buffer, _enc, cb) {
        n += chunk.length;
        cb(null, chunk);
      },
    });
    pipeline(stream, counter, () => safely(() => onBytesOut(n, driver)));
    return counter;
  };

  /** A file's reads counted as bytes out, reported once when it is closed. */
  const countFileOut = (file: BlobFile): BlobFile => {
    const onBytesOut = hooks.onBytesOut;
    if (onBytesOut === undefined) return file;
    let n = 0;
    let reported = false;
    return {
      size: file.size,
      read: async (buffer, offset, length, position) => {
        const got = await file.read(buffer, offset, length, position);
        n += got;
        return got;
      },
      close: async () => {
        if (!reported) {
          reported = true;
          safely(() => onBytesOut(n, driver));
        }
        await file.close();
      },
    };
  };

  const countIn = (n: number): void => {
    const onBytesIn = hooks.onBytesIn;
    if (onBytesIn !== undefined && n > 0) safely(() => onBytesIn(n, driver));
  };

  const inner = store.uploads;
  const uploads: UploadStore = {
    create: (id) => call('uploads.create', () => checkUploadId(id), () => inner.create(id)),
    size: (id) => call('uploads.size', () => checkUploadId(id), () => inner.size(id)),
    append: (id, data, opts) =>
      call(
        'uploads.append',
        () => {
          checkUploadId(id);
          checkCount('offset', opts?.offset);
          if (opts?.offset === undefined) throw new RangeError('offset is required');
          checkCount('maxBytes', opts.maxBytes);
        },
        async () => {
          const size = await inner.append(id, data, opts);
          countIn(size - opts.offset);
          return size;
        },
        { source: data, signal: opts?.signal },
      ),
    commit: (id, expectedDigest, opts) =>
      call(
        'uploads.commit',
        () => {
          checkUploadId(id);
          parseDigest(expectedDigest);
          checkCount('expectedSize', opts?.expectedSize);
        },
        () => inner.commit(id, expectedDigest, opts),
      ),
    abort: (id) => call('uploads.abort', () => checkUploadId(id), () => inner.abort(id)),
    list: () => iterate('uploads.list', () => inner.list()),
  };

  const wrapped: BlobStore & { [WRAPPED]: true } = {
    [WRAPPED]: true,
    driver,
    uploads,
    stat: (digest: Digest): Promise<BlobStat | null> =>
      call('stat', () => parseDigest(digest), () => store.stat(digest)),
    open: (digest: Digest, opts?: OpenOptions): Promise<Readable> =>
      call(
        'open',
        () => {
          parseDigest(digest);
          if (opts?.range !== undefined && (typeof opts.range !== 'object' || opts.range === null)) {
            throw new TypeError('range must be an object');
          }
        },
        async () => countOut(await store.open(digest, opts)),
        { signal: opts?.signal },
      ),
    ...(store.openFile === undefined
      ? {}
      : {
          openFile: (digest: Digest): Promise<BlobFile> =>
            call('open', () => parseDigest(digest), async () => countFileOut(await store.openFile!(digest))),
        }),
    ...(store.adoptFile === undefined
      ? {}
      : {
          adoptFile: (path: string, blob: { digest: Digest; size: number }): Promise<PutResult> =>
            call(
              'put',
              () => {
                parseDigest(blob.digest);
                checkCount('size', blob.size);
              },
              async () => {
                const result = await store.adoptFile!(path, blob);
                countIn(result.size);
                return result;
              },
            ),
        }),
    put: (data: Readable, opts?: PutOptions): Promise<PutResult> =>
      call(
        'put',
        () => {
          if (opts?.expectedDigest !== undefined) parseDigest(opts.expectedDigest);
          checkCount('expectedSize', opts?.expectedSize);
          checkCount('maxBytes', opts?.maxBytes);
        },
        async () => {
          const result = await store.put(data, opts);
          countIn(result.size);
          return result;
        },
        { source: data, signal: opts?.signal },
      ),
    delete: (digest: Digest): Promise<boolean> => call('delete', () => parseDigest(digest), () => store.delete(digest)),
    list: () => iterate('list', () => store.list()),
    sweep: (olderThanMs?: number): Promise<number> =>
      call('sweep', () => checkCount('olderThanMs', olderThanMs), () => store.sweep(olderThanMs)),
    close: () => call('close', () => {}, () => store.close()),
  };
  return wrapped;
}
