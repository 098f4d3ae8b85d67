/**
 * The BlobStore contract: content-addressed bytes, nothing else.
 *
 * A blob is named by its digest (`sha256:<64 hex>`; `sha512:<128 hex>` accepted where a protocol needs it).
 * The store knows nothing of formats, repositories or permissions: those live in meta/ and repos/.
 * Every driver (fs today, s3 later) must pass the shared suite in test/blobs/suite.ts.
 *
 * Invariants every driver keeps:
 * - A blob becomes visible (stat/open/list) only after its bytes were fully written, flushed and their digest
 *   verified. A failed or aborted write leaves nothing visible — at most a temp object, removed by `sweep`.
 * - Concurrent puts of the same digest are safe: both succeed, the content is written once or identically.
 * - Digests are validated strictly before any key or path is derived from them (InvalidDigestError).
 * - No method buffers a whole blob in memory.
 */
import type { Readable } from 'node:stream';

/** `sha256:<hex>` or `sha512:<hex>`, lower-case hex, validated by `parseDigest`. */
export type Digest = string;

export interface BlobStat {
  digest: Digest;
  size: number;
  /** Last modification time of the stored object (ms since epoch); used by GC grace periods. */
  modifiedAt: number;
}

/** Inclusive byte range, as in HTTP: `start` ≤ `end` < size. `end` omitted = to the end. */
export interface ByteRange {
  start: number;
  end?: number;
}

export interface PutOptions {
  /** When given, the write fails with DigestMismatchError unless the content hashes to it. Its algorithm
   *  (sha256 or sha512) is the one computed; without it, sha256. */
  expectedDigest?: Digest;
  /** When given, the write fails with SizeMismatchError unless exactly this many bytes arrive. */
  expectedSize?: number;
  /** Hard cap on bytes accepted; past it the write fails with TooLargeError and nothing is kept. */
  maxBytes?: number;
  signal?: AbortSignal;
}

export interface PutResult {
  digest: Digest;
  size: number;
  /** false when the blob was already present (dedup): the bytes were verified and discarded. */
  created: boolean;
}

export interface OpenOptions {
  range?: ByteRange;
  signal?: AbortSignal;
}

/**
 * A stored blob opened for positional reads (`BlobStore.openFile`): what a sender needs to copy bytes into a
 * socket through a few reused buffers instead of a stream that allocates one per chunk.
 */
export interface BlobFile {
  /** Size of the stored bytes (read from the file, not from metadata). */
  readonly size: number;
  /** Reads up to `length` bytes at `position` into `buffer` at `offset`; 0 at end of file. */
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** Releases the file; idempotent. */
  close(): Promise<void>;
}

/**
 * Resumable upload sessions: bytes appended in order across requests (and, on shared storage, across nodes
 * and restarts), published as a blob only by `commit` after the digest is verified.
 * Session ids are opaque strings the caller chooses, validated against /^[A-Za-z0-9_-]{8,128}$/.
 */
export interface UploadStore {
  /** Creates an empty session. Fails with UploadExistsError if it exists. */
  create(id: string): Promise<void>;
  /** Current size, or null when the session does not exist. */
  size(id: string): Promise<number | null>;
  /**
   * Appends a stream at `offset`, which must equal the current size (else UploadOffsetError, nothing written).
   * On a stream error the session is left at its previous size (the partial chunk is dropped).
   * Returns the new size.
   */
  append(id: string, data: Readable, opts: { offset: number; maxBytes?: number; signal?: AbortSignal }): Promise<number>;
  /**
   * Verifies the whole session content against `expectedDigest` and publishes it as that blob; the session is
   * gone afterwards. On mismatch: DigestMismatchError, and the session is removed too (its content can never
   * become valid).
   */
  commit(id: string, expectedDigest: Digest, opts?: { expectedSize?: number }): Promise<PutResult>;
  /** Removes a session; no error when absent. */
  abort(id: string): Promise<void>;
  /** All sessions with their last write time, for expiry. */
  list(): AsyncIterable<{ id: string; size: number; modifiedAt: number }>;
}

export interface BlobStore {
  /** Driver name, carried by errors and metrics ("fs", "s3"). */
  readonly driver: string;
  stat(digest: Digest): Promise<BlobStat | null>;
  /**
   * Streams the blob, or the inclusive range of it. Errors: BlobNotFoundError; RangeNotSatisfiableError when
   * start ≥ size or end < start.
   */
  open(digest: Digest, opts?: OpenOptions): Promise<Readable>;
  /**
   * Optional (drivers with local files: fs): the blob opened for positional reads, for the serving fast path
   * (`server/send-file.ts`). Errors as `open` (BlobNotFoundError). Callers fall back to `open` when absent.
   */
  openFile?(digest: Digest): Promise<BlobFile>;
  /** Hashes while streaming to a temp object, flushes, verifies, then publishes atomically. */
  put(data: Readable, opts?: PutOptions): Promise<PutResult>;
  /**
   * Optional (fs): publishes a local file as blob `blob.digest` without copying it — linked into place when it
   * is on the store's filesystem, else copied and hashed again. The caller vouches for the digest: it hashed the
   * bytes as it wrote them, and fsynced the file (the proxy's spool, repos/proxy/flight.ts). The file's name is
   * gone afterwards. SizeMismatchError when the file is not `blob.size` bytes.
   */
  adoptFile?(path: string, blob: { digest: Digest; size: number }): Promise<PutResult>;
  /** Removes the blob; returns false when it was absent. */
  delete(digest: Digest): Promise<boolean>;
  /** Every visible blob, in no particular order; for GC and metrics. */
  list(): AsyncIterable<BlobStat>;
  /** Removes temp objects older than `olderThanMs` (left by crashes); returns how many. Called at start. */
  sweep(olderThanMs?: number): Promise<number>;
  readonly uploads: UploadStore;
  /** Releases resources (file handles, sockets). */
  close(): Promise<void>;
}
