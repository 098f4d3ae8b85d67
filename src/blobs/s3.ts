/**
 * S3-compatible blob store driver (AWS S3, MinIO, Ceph RGW, Garage; tested on s3rver). Use it through
 * `createBlobStore` (index.ts), which wraps it in `withValidation`. Key layout: s3-common.ts.
 *
 * put: the body streams through a hash into a temp object `_tmp/<uuid>` (one PutObject, or a multipart upload
 * with bounded parts in flight: s3-writer.ts), is verified (digest, size, maxBytes), then published by a
 * server-side copy to its content key (CopyObject, or UploadPartCopy parts above 5 GiB: s3-copy.ts) — or, when
 * that key exists already, `created` is false and the existing object, unless written in the last 10 minutes, is
 * "touched" (copied onto itself) so GC grace periods count from now. The temp object is deleted in every
 * outcome; a crash leaves it for `sweep` (s3-sweep.ts aborts stale multipart uploads).
 *
 * Limits and caveats (see docs/operations.md):
 * - `presignedGet` (used by index.ts when `redirect` is on) signs a short-lived GET URL so clients download from
 *   the bucket directly; the node still authorises the request and answers HEAD, 304 and 416 itself.
 * - Racing puts of one digest may both report `created: true` (S3 has no portable create-if-absent copy);
 *   the content is identical, so nothing is lost.
 * - Upload sessions (s3-uploads.ts) serialise appends per session in-process only.
 */
import { randomUUID } from 'node:crypto';
import { addAbortSignal, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  GetObjectCommand,
  HeadObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import type { BlobStat, BlobStore, Digest, OpenOptions, PutOptions, PutResult } from './types.ts';
import { createDigester, DIGEST_ALGORITHMS, parseDigest, type DigestAlgorithm, type ParsedDigest } from './digest.ts';
import { BlobNotFoundError, DigestMismatchError, RangeNotSatisfiableError, SizeMismatchError, TooLargeError } from './errors.ts';
import { resolveRange } from './base.ts';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { copyKey, MAX_OBJECT_BYTES, MAX_SINGLE_COPY_BYTES } from './s3-copy.ts';
import {
  deleteKey,
  deleteQuietly,
  isNotFound,
  keyedLock,
  listObjects,
  normalizePrefix,
  s3Layout,
  statusOf,
  type S3Context,
} from './s3-common.ts';
import { S3ObjectSink } from './s3-writer.ts';
import { createS3Uploads, type WriteBlob } from './s3-uploads.ts';
import { sweepMultipartUploads } from './s3-sweep.ts';

export interface S3BlobStoreOptions {
  bucket: string;
  /** Key prefix inside the bucket; a trailing "/" is added when missing. Default: none. */
  prefix?: string;
  /** S3-compatible endpoint URL (MinIO, RGW, Garage…); AWS when omitted. */
  endpoint?: string;
  /** Default: AWS_REGION from the environment, else "us-east-1". */
  region?: string;
  /** Bucket in the path rather than the host name; most self-hosted servers need it. Default false. */
  forcePathStyle?: boolean;
  /** Explicit credentials; without them the SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
   *  AWS_PROFILE, instance or pod roles…) is used. */
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Multipart part size in bytes (min 5 MiB, default 8 MiB). */
  partSize?: number;
  /** Parts uploaded in parallel per write (default 2). */
  queueSize?: number;
  /** Copies (publish, touch) above this size use multipart UploadPartCopy (default and maximum 5 GiB). */
  multipartCopyThreshold?: number;
  /** Part size of multipart copies (default 512 MiB, min 5 MiB). */
  copyPartSize?: number;
  /** Answer blob downloads with 307 to a presigned URL, so the bytes bypass the nodes (index.ts). Default false. */
  redirect?: boolean;
  /** Lifetime of a presigned URL in seconds (default 300). */
  redirectExpirySeconds?: number;
  /** Endpoint clients reach the bucket at, when it differs from `endpoint` (e.g. inside vs outside a cluster). */
  redirectEndpoint?: string;
}

/** What a presigned download URL carries beside the object. */
export interface PresignOptions {
  contentType?: string;
  contentDisposition?: string;
}

/** The s3 driver: a BlobStore plus signing of download URLs. */
export interface S3BlobStore extends BlobStore {
  presignedGet(digest: Digest, opts?: PresignOptions): Promise<string>;
}

/** Default age past which `sweep()` removes temp objects (same as fs). */
export const DEFAULT_TEMP_MAX_AGE_MS = 60 * 60 * 1000;
const MiB = 1024 * 1024;
/** Largest blob the driver accepts (the largest S3 object). */
export const MAX_BLOB_BYTES = MAX_OBJECT_BYTES;
/** An existing blob is touched on dedup only when older than this (GC grace periods are hours, not minutes). */
const TOUCH_AFTER_MS = 10 * 60 * 1000;
const SHARD = /^[a-f0-9]{2}$/;
const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

export function createS3Client(options: S3BlobStoreOptions): S3Client {
  const config: S3ClientConfig = {
    region: options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    forcePathStyle: options.forcePathStyle ?? false,
    // Only send/check the checksums S3 requires: many S3-compatible servers reject the newer default trailers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
  if (options.endpoint !== undefined) config.endpoint = options.endpoint;
  if (options.accessKeyId !== undefined || options.secretAccessKey !== undefined) {
    if (!options.accessKeyId || !options.secretAccessKey) {
      throw new TypeError('s3 blob store: accessKeyId and secretAccessKey go together');
    }
    config.credentials = {
      accessKeyId: options.accessKeyId,
      secretAccessKey: options.secretAccessKey,
      ...(options.sessionToken === undefined ? {} : { sessionToken: options.sessionToken }),
    };
  }
  return new S3Client(config);
}

export async function createS3BlobStore(options: S3BlobStoreOptions): Promise<S3BlobStore> {
  if (typeof options?.bucket !== 'string' || options.bucket === '') throw new TypeError('s3 blob store needs a bucket');
  const partSize = options.partSize ?? 8 * MiB;
  const queueSize = options.queueSize ?? 2;
  if (!Number.isSafeInteger(partSize) || partSize < 5 * MiB) throw new RangeError('s3 partSize must be at least 5 MiB');
  if (!Number.isSafeInteger(queueSize) || queueSize < 1) throw new RangeError('s3 queueSize must be at least 1');
  const copyThreshold = options.multipartCopyThreshold ?? MAX_SINGLE_COPY_BYTES;
  const copyPartSize = options.copyPartSize ?? 512 * MiB;
  if (!Number.isSafeInteger(copyThreshold) || copyThreshold < 0 || copyThreshold > MAX_SINGLE_COPY_BYTES) {
    throw new RangeError('s3 multipartCopyThreshold must be between 0 and 5 GiB');
  }
  if (!Number.isSafeInteger(copyPartSize) || copyPartSize < 5 * MiB) throw new RangeError('s3 copyPartSize must be at least 5 MiB');
  const expiry = options.redirectExpirySeconds ?? 300;
  // SigV4 presigned URLs live at most 7 days.
  if (!Number.isSafeInteger(expiry) || expiry < 1 || expiry > 604_800) throw new RangeError('s3 redirectExpirySeconds must be 1..604800');
  const ctx: S3Context = {
    client: createS3Client(options),
    bucket: options.bucket,
    layout: s3Layout(normalizePrefix(options.prefix)),
    active: new Set(),
    partSize,
    queueSize,
    copyThreshold,
    copyPartSize,
  };
  const { client, bucket, layout } = ctx;
  // URLs for clients are signed for the endpoint they reach; signing needs no request to the server.
  const signer =
    options.redirectEndpoint === undefined || options.redirectEndpoint === options.endpoint
      ? client
      : createS3Client({ ...options, endpoint: options.redirectEndpoint });
  const publishLock = keyedLock();

  async function head(key: string): Promise<{ size: number; modifiedAt: number } | null> {
    try {
      const res = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return { size: res.ContentLength ?? 0, modifiedAt: res.LastModified?.getTime() ?? Date.now() };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /**
   * Publishes the verified temp object as blob `d`. Returns false when the blob existed; unless it was written
   * recently it is then touched (copied onto itself with fresh metadata) so its LastModified counts from now.
   * Publishes of one digest are serialised in-process: one node copies each blob once and reports `created` once.
   */
  function publish(tempKey: string, d: ParsedDigest, size: number): Promise<boolean> {
    const target = layout.blob(d);
    return publishLock(target, () => publishUnlocked(tempKey, target, size));
  }

  async function publishUnlocked(tempKey: string, target: string, size: number): Promise<boolean> {
    const existing = await head(target);
    if (existing !== null) {
      if (Date.now() - existing.modifiedAt < TOUCH_AFTER_MS) return false;
      try {
        await copyKey(ctx, target, target, existing.size, { replaceMetadata: true });
        return false;
      } catch (err) {
        if (!isNotFound(err)) return false; // the blob is there; a failed touch only shortens its grace period
        // deleted since the HEAD (GC): publish ours after all
      }
    }
    await copyKey(ctx, tempKey, target, size);
    return true;
  }

  /** Streams `data` into a temp object while hashing, verifies, publishes; the temp object never survives. */
  const writeBlob: WriteBlob = async (data, opts) => {
    const algorithm = opts.algorithm;
    const cap = Math.min(opts.maxBytes ?? MAX_BLOB_BYTES, MAX_BLOB_BYTES);
    if (opts.expectedSize !== undefined && opts.expectedSize > cap) throw new TooLargeError(cap);
    opts.signal?.throwIfAborted();
    const key = layout.temp(randomUUID());
    ctx.active.add(key);
    const digester = createDigester(algorithm);
    const sink = new S3ObjectSink({
      client,
      bucket,
      key,
      digester,
      maxBytes: cap,
      ...(opts.expectedSize === undefined ? {} : { expectedSize: opts.expectedSize }),
      partSize,
      queueSize,
    });
    try {
      await pipeline(data, sink, opts.signal === undefined ? {} : { signal: opts.signal });
      const size = sink.bytes;
      if (opts.expectedSize !== undefined && size !== opts.expectedSize) throw new SizeMismatchError(opts.expectedSize, size);
      const digest = digester.digest();
      if (opts.expectedDigest !== undefined && digest !== opts.expectedDigest) {
        throw new DigestMismatchError(opts.expectedDigest, digest);
      }
      const created = await publish(key, parseDigest(digest), size);
      return { digest, size, created };
    } finally {
      await sink.settled();
      if (sink.stored || sink.bytes > 0) await deleteQuietly(ctx, key);
      ctx.active.delete(key);
    }
  };

  const uploads = createS3Uploads(ctx, writeBlob);

  const store: S3BlobStore = {
    driver: 's3',

    presignedGet(digest: Digest, opts: PresignOptions = {}): Promise<string> {
      const command = new GetObjectCommand({
        Bucket: bucket,
        Key: layout.blob(parseDigest(digest)),
        ...(opts.contentType === undefined ? {} : { ResponseContentType: opts.contentType }),
        ...(opts.contentDisposition === undefined ? {} : { ResponseContentDisposition: opts.contentDisposition }),
      });
      return getSignedUrl(signer, command, { expiresIn: expiry });
    },
    uploads: uploads.store,

    async stat(digest: Digest): Promise<BlobStat | null> {
      const found = await head(layout.blob(parseDigest(digest)));
      return found === null ? null : { digest, size: found.size, modifiedAt: found.modifiedAt };
    },

    async open(digest: Digest, opts: OpenOptions = {}): Promise<Readable> {
      const key = layout.blob(parseDigest(digest));
      opts.signal?.throwIfAborted();
      let range: { start: number; end: number } | undefined;
      if (opts.range !== undefined) {
        // The size is needed to check the range (and to report it); S3 would also accept bytes=a-b blindly.
        const found = await head(key);
        if (found === null) throw new BlobNotFoundError(digest);
        range = resolveRange(opts.range, found.size);
      }
      let body: Readable;
      try {
        const res = await client.send(
          new GetObjectCommand({ Bucket: bucket, Key: key, ...(range === undefined ? {} : { Range: `bytes=${range.start}-${range.end}` }) }),
          opts.signal === undefined ? {} : { abortSignal: opts.signal },
        );
        body = res.Body as Readable;
      } catch (err) {
        if (isNotFound(err)) throw new BlobNotFoundError(digest);
        if (statusOf(err) === 416) {
          const found = await head(key);
          if (found === null) throw new BlobNotFoundError(digest);
          throw new RangeNotSatisfiableError(found.size, opts.range);
        }
        throw err;
      }
      if (opts.signal !== undefined) addAbortSignal(opts.signal, body);
      return body;
    },

    put(data: Readable, opts: PutOptions = {}): Promise<PutResult> {
      const algorithm = opts.expectedDigest === undefined ? 'sha256' : parseDigest(opts.expectedDigest).algorithm;
      if (opts.maxBytes !== undefined && opts.expectedSize !== undefined && opts.expectedSize > opts.maxBytes) {
        return Promise.reject(new TooLargeError(opts.maxBytes));
      }
      return writeBlob(data, { ...opts, algorithm });
    },

    async delete(digest: Digest): Promise<boolean> {
      const key = layout.blob(parseDigest(digest));
      if ((await head(key)) === null) return false;
      await deleteKey(ctx, key);
      return true;
    },

    async *list(): AsyncIterable<BlobStat> {
      for (const algorithm of DIGEST_ALGORITHMS) {
        const base = layout.algorithmPrefix(algorithm);
        for await (const o of listObjects(ctx, base)) {
          const [shard, hex, ...rest] = o.key.slice(base.length).split('/');
          if (rest.length > 0 || hex === undefined || !SHARD.test(shard) || !hex.startsWith(shard)) continue;
          if (hex.length !== HEX_LENGTH[algorithm] || !/^[a-f0-9]+$/.test(hex)) continue;
          yield { digest: `${algorithm}:${hex}`, size: o.size, modifiedAt: o.modifiedAt };
        }
      }
    },

    async sweep(olderThanMs: number = DEFAULT_TEMP_MAX_AGE_MS): Promise<number> {
      const now = Date.now();
      const stale = (t: number): boolean => olderThanMs === 0 || now - t >= olderThanMs;
      let removed = 0;
      for await (const o of listObjects(ctx, layout.tmpPrefix)) {
        if (ctx.active.has(o.key) || !stale(o.modifiedAt)) continue;
        await deleteKey(ctx, o.key);
        removed++;
      }
      removed += await sweepMultipartUploads(ctx, stale);
      removed += await uploads.sweepOrphans(stale);
      return removed;
    },

    async close(): Promise<void> {
      client.destroy();
      if (signer !== client) signer.destroy();
    },
  };

  return store;
}
