/**
 * Entry point of the blob store: picks the driver from configuration and wraps it (validation, typed errors,
 * metrics hooks), then sweeps temp objects left by crashes. Nothing else in the codebase names a driver.
 */
import type { BlobStore } from './types.ts';
import { withValidation, type BlobStoreHooks } from './base.ts';
import { createFsBlobStore, DEFAULT_TEMP_MAX_AGE_MS } from './fs.ts';
import type { PresignOptions, S3BlobStoreOptions } from './s3.ts';

export interface FsBlobStoreConfig {
  driver: 'fs';
  /** Directory holding blobs, temp files and upload sessions. */
  root: string;
}

/** Options of the s3 driver (bucket, prefix, endpoint, region, forcePathStyle, credentials, part sizes): s3.ts. */
export interface S3BlobStoreConfig extends S3BlobStoreOptions {
  driver: 's3';
}

/** Options every driver accepts. */
export interface CommonBlobStoreConfig {
  /** Sweep temp objects at start (default true). */
  sweepOnStart?: boolean;
  /** Age past which the start sweep removes temp objects (default 1 hour). */
  tempMaxAgeMs?: number;
  hooks?: BlobStoreHooks;
}

export type BlobStoreConfig = (FsBlobStoreConfig | S3BlobStoreConfig) & CommonBlobStoreConfig;

/** Stores that redirect downloads, with their signer (kept beside the store: the wrapper has no such method). */
const presigners = new WeakMap<BlobStore, (digest: string, opts: PresignOptions) => Promise<string>>();

/**
 * Where a client may fetch blob `digest` directly (a presigned URL), or null when the store serves bytes itself:
 * the fs driver, or s3 without `redirect`. The caller has checked that the blob exists and who may read it.
 */
export async function blobDownloadUrl(store: BlobStore, digest: string, opts: PresignOptions = {}): Promise<string | null> {
  const presign = presigners.get(store);
  return presign === undefined ? null : presign(digest, opts);
}

export async function createBlobStore(config: BlobStoreConfig): Promise<BlobStore> {
  let driver: BlobStore;
  let presign: ((digest: string, opts: PresignOptions) => Promise<string>) | undefined;
  switch (config.driver) {
    case 'fs':
      driver = await createFsBlobStore({ root: config.root });
      break;
    case 's3': {
      // Loaded only when configured: the AWS SDK costs ~20 MiB of memory a filesystem-backed node never needs.
      const { createS3BlobStore } = await import('./s3.ts');
      const s3 = await createS3BlobStore(config);
      if (config.redirect === true) presign = (digest, opts) => s3.presignedGet(digest, opts);
      driver = s3;
      break;
    }
    default:
      throw new Error(`unknown blob store driver ${JSON.stringify((config as { driver?: unknown }).driver)}`);
  }
  const store = withValidation(driver, config.hooks);
  if (presign !== undefined) presigners.set(store, presign);
  if (config.sweepOnStart !== false) await store.sweep(config.tempMaxAgeMs ?? DEFAULT_TEMP_MAX_AGE_MS);
  return store;
}

export type {
  BlobStat,
  BlobStore,
  ByteRange,
  Digest,
  OpenOptions,
  PutOptions,
  PutResult,
  UploadStore,
} from './types.ts';
export type { BlobOperation, BlobStoreHooks } from './base.ts';
export type { PresignOptions } from './s3.ts';
export { isUploadId, UPLOAD_ID_PATTERN } from './base.ts';
export {
  createDigester,
  digestOf,
  isDigest,
  parseDigest,
  type Digester,
  type DigestAlgorithm,
  type ParsedDigest,
} from './digest.ts';
export * from './errors.ts';
