/**
 * Streaming writes to one S3 object, for the s3 blob store driver (s3.ts).
 *
 * `S3ObjectSink` is a Writable that hashes and counts what passes, fails as soon as the count passes `maxBytes`
 * (TooLargeError) or `expectedSize` (SizeMismatchError) — before anything past the limit is sent — and uploads:
 * one PutObject when the whole body fits in one part, otherwise a multipart upload with `partSize` parts and at
 * most `queueSize` parts in flight. Memory is bounded by about (queueSize + 1) × partSize; no whole blob is held.
 *
 * The object exists only once the sink has finished (PutObject / CompleteMultipartUpload returned). When the
 * sink is destroyed first (source error, abort, limit), in-flight requests are cancelled and the multipart
 * upload is aborted (best effort: `sweep` aborts what is left, on servers that list multipart uploads).
 * `settled()` resolves once that cleanup is over.
 */
import { Writable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Digester } from './digest.ts';
import { SizeMismatchError, TooLargeError } from './errors.ts';

const MiB = 1024 * 1024;
/** S3's smallest part (except the last) and largest part count. */
export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PARTS = 10_000;

export interface S3SinkOptions {
  client: S3Client;
  bucket: string;
  key: string;
  /** Fed every byte, in order; null = no hashing. */
  digester: Digester | null;
  maxBytes?: number;
  expectedSize?: number;
  partSize: number;
  queueSize: number;
  /** When nothing arrives, store nothing (instead of an empty object). */
  skipEmpty?: boolean;
}

export class S3ObjectSink extends Writable {
  /** Bytes accepted so far. */
  bytes = 0;
  /** True once the object exists. */
  stored = false;
  readonly #opts: S3SinkOptions;
  readonly #partSize: number;
  readonly #cancel = new AbortController();
  #chunks: Buffer[] = [];
  #buffered = 0;
  #uploadId: string | undefined;
  #parts: CompletedPart[] = [];
  readonly #inflight = new Set<Promise<void>>();
  #error: Error | null = null;
  #settled: Promise<void> = Promise.resolve();

  constructor(opts: S3SinkOptions) {
    super({ highWaterMark: MiB });
    this.#opts = opts;
    // Grow parts when the announced size would need more than MAX_PARTS of them.
    const needed = opts.expectedSize === undefined ? 0 : Math.ceil(opts.expectedSize / (MAX_PARTS - 1));
    this.#partSize = Math.max(opts.partSize, MIN_PART_SIZE, needed);
  }

  /** Resolves when no request of this sink is pending and an unfinished multipart upload was aborted. */
  settled(): Promise<void> {
    return this.#settled;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#accept(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#finish().then(() => callback(), callback);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (this.stored) return callback(err);
    this.#cancel.abort();
    this.#chunks = [];
    this.#settled = this.#cleanup();
    this.#settled.then(() => callback(err));
  }

  async #cleanup(): Promise<void> {
    await Promise.allSettled([...this.#inflight]);
    const uploadId = this.#uploadId;
    if (uploadId === undefined) return;
    this.#uploadId = undefined;
    const { client, bucket, key } = this.#opts;
    try {
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
    } catch {
      // best effort: some servers (s3rver) cannot abort; `sweep` retries where ListMultipartUploads works
    }
  }

  async #accept(chunk: Buffer): Promise<void> {
    if (this.#error) throw this.#error;
    const received = this.bytes + chunk.length;
    const { maxBytes, expectedSize } = this.#opts;
    if (maxBytes !== undefined && received > maxBytes) throw new TooLargeError(maxBytes);
    if (expectedSize !== undefined && received > expectedSize) throw new SizeMismatchError(expectedSize, received);
    this.bytes = received;
    this.#opts.digester?.update(chunk);
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    while (this.#buffered >= this.#partSize) {
      await this.#sendPart(this.#take(this.#partSize));
      if (this.#error) throw this.#error;
    }
  }

  /** Removes and returns the first `n` buffered bytes as one buffer. */
  #take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const head = this.#chunks[0];
      const want = n - filled;
      if (head.length <= want) {
        head.copy(out, filled);
        filled += head.length;
        this.#chunks.shift();
      } else {
        head.copy(out, filled, 0, want);
        this.#chunks[0] = head.subarray(want);
        filled += want;
      }
    }
    this.#buffered -= n;
    return out;
  }

  /** Starts uploading one part; waits while `queueSize` parts are already in flight. */
  async #sendPart(body: Buffer): Promise<void> {
    const { client, bucket, key } = this.#opts;
    const signal = this.#cancel.signal;
    if (this.#uploadId === undefined) {
      const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }), {
        abortSignal: signal,
      });
      if (created.UploadId === undefined) throw new Error('CreateMultipartUpload returned no UploadId');
      if (signal.aborted) {
        // destroyed while the upload was being created: #cleanup did not see its id
        await client
          .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: created.UploadId }))
          .catch(() => {});
        throw signal.reason;
      }
      this.#uploadId = created.UploadId;
    }
    const partNumber = this.#parts.length + 1;
    if (partNumber > MAX_PARTS) throw new Error(`more than ${MAX_PARTS} parts of ${this.#partSize} bytes`);
    const part: CompletedPart = { PartNumber: partNumber };
    this.#parts.push(part);
    const uploadId = this.#uploadId;
    const request = client
      .send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: body }), {
        abortSignal: signal,
      })
      .then((res) => {
        part.ETag = res.ETag;
      })
      .catch((err: Error) => {
        this.#error ??= err;
      })
      .finally(() => this.#inflight.delete(request));
    this.#inflight.add(request);
    while (this.#inflight.size >= this.#opts.queueSize) await Promise.race(this.#inflight);
  }

  async #finish(): Promise<void> {
    if (this.#error) throw this.#error;
    const { client, bucket, key, expectedSize } = this.#opts;
    if (expectedSize !== undefined && this.bytes !== expectedSize) throw new SizeMismatchError(expectedSize, this.bytes);
    const signal = this.#cancel.signal;
    if (this.#uploadId === undefined) {
      if (this.bytes === 0 && this.#opts.skipEmpty) return;
      const body = this.#take(this.#buffered);
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.length }), {
        abortSignal: signal,
      });
      this.stored = true;
      return;
    }
    if (this.#buffered > 0) await this.#sendPart(this.#take(this.#buffered));
    while (this.#inflight.size > 0) await Promise.all([...this.#inflight]);
    if (this.#error) throw this.#error;
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: this.#uploadId,
        MultipartUpload: { Parts: this.#parts },
      }),
      { abortSignal: signal },
    );
    this.#uploadId = undefined;
    this.stored = true;
  }
}
