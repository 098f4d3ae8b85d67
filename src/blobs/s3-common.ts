/**
 * What the s3 driver's modules share: the key layout inside the bucket (drawn once, here), paginated listing,
 * not-found detection and quiet deletes.
 *
 * Layout under `prefix` ("" or ending in "/"):
 *   sha256/<first 2 hex>/<64 hex>        published blobs (sha512/<2>/<128 hex> likewise)
 *   _tmp/<uuid>                          puts in progress, or left by a crash (removed by `sweep`)
 *   _uploads/<id>/_meta                  an upload session exists (empty object)
 *   _uploads/<id>/<offset, 16 digits>    one appended chunk starting at that offset (never empty)
 */
import { DeleteObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { ParsedDigest, DigestAlgorithm } from './digest.ts';

export interface S3Context {
  client: S3Client;
  bucket: string;
  layout: S3Layout;
  /** Keys this process is writing right now: `sweep` leaves them (and their multipart uploads) alone. */
  active: Set<string>;
  partSize: number;
  queueSize: number;
  /** Copies above this many bytes are multipart (UploadPartCopy); at most 5 GiB (s3-copy.ts). */
  copyThreshold: number;
  /** Part size of multipart copies (grown when an object would need more than 10 000 parts). */
  copyPartSize: number;
}

export interface S3Object {
  key: string;
  size: number;
  modifiedAt: number;
}

const OFFSET_DIGITS = 16; // Number.MAX_SAFE_INTEGER has 16 digits

export type S3Layout = ReturnType<typeof s3Layout>;

export function s3Layout(prefix: string) {
  const tmpPrefix = `${prefix}_tmp/`;
  const uploadsPrefix = `${prefix}_uploads/`;
  const session = (id: string): string => `${uploadsPrefix}${id}/`;
  return {
    prefix,
    tmpPrefix,
    uploadsPrefix,
    algorithmPrefix: (algorithm: DigestAlgorithm): string => `${prefix}${algorithm}/`,
    blob: (d: ParsedDigest): string => `${prefix}${d.algorithm}/${d.hex.slice(0, 2)}/${d.hex}`,
    temp: (name: string): string => `${tmpPrefix}${name}`,
    session,
    sessionMeta: (id: string): string => `${session(id)}_meta`,
    part: (id: string, offset: number): string => `${session(id)}${String(offset).padStart(OFFSET_DIGITS, '0')}`,
    /** Offset of a part from the last segment of its key, or null for anything else (the meta object). */
    partOffset: (name: string): number | null =>
      name.length === OFFSET_DIGITS && /^[0-9]+$/.test(name) ? Number(name) : null,
  };
}

/** Normalises a configured prefix: no leading "/", and a trailing "/" unless empty. */
export function normalizePrefix(prefix: string | undefined): string {
  const p = (prefix ?? '').replace(/^\/+/, '');
  return p === '' || p.endsWith('/') ? p : `${p}/`;
}

/** Every object under `prefix`, in key order, page by page. */
export async function* listObjects(ctx: S3Context, prefix: string): AsyncGenerator<S3Object> {
  let token: string | undefined;
  do {
    const page = await ctx.client.send(
      new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: prefix, ...(token === undefined ? {} : { ContinuationToken: token }) }),
    );
    for (const o of page.Contents ?? []) {
      if (o.Key === undefined) continue;
      yield { key: o.Key, size: o.Size ?? 0, modifiedAt: o.LastModified?.getTime() ?? 0 };
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
}

/** A 404 about an object (not about the bucket: a missing bucket is a configuration error, not a missing blob). */
export function isNotFound(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (e.name === 'NoSuchBucket') return false;
  return e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404;
}

/** S3 status of an SDK error, if any. */
export function statusOf(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null
    ? (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
    : undefined;
}

export async function deleteKey(ctx: S3Context, key: string): Promise<void> {
  await ctx.client.send(new DeleteObjectCommand({ Bucket: ctx.bucket, Key: key }));
}

/** Deletes, ignoring failures (cleanup after another error; `sweep` catches what is left). */
export async function deleteQuietly(ctx: S3Context, key: string): Promise<void> {
  try {
    await deleteKey(ctx, key);
  } catch {
    // left for sweep
  }
}

/** `CopySource` for a key: bucket/key, each segment URL-encoded. */
export function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/** Serialises async work per key within this process. */
export function keyedLock(): <T>(key: string, fn: () => Promise<T>) => Promise<T> {
  const locks = new Map<string, Promise<void>>();
  return async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const previous = locks.get(key);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous === undefined ? mine : previous.then(() => mine);
    locks.set(key, tail);
    try {
      if (previous !== undefined) await previous;
      return await fn();
    } finally {
      release();
      if (locks.get(key) === tail) locks.delete(key);
    }
  };
}
