/**
 * Entry point of the blob store: picks the driver from configuration and wraps it (validation, typed errors,
 * metrics hooks), then sweeps temp objects left by crashes. Nothing else in the codebase names a driver.
 */
import type { BlobStore } from './types.ts';
import { withValidation, type BlobStoreHooks } from './base.ts';
import { createFsBlobStore, DEFAULT_TEMP_MAX_AGE_MS } from './fs.ts';
import { createS3BlobStore, type S3BlobStoreOptions } from './s3.ts';

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

export async function createBlobStore(config: BlobStoreConfig): Promise<BlobStore> {
  let driver: BlobStore;
  switch (config.driver) {
    case 'fs':
      driver = await createFsBlobStore({ root: config.root });
      break;
    case 's3':
      driver = await createS3BlobStore(config);
      break;
    default:
      throw new Error(`unknown blob store driver ${JSON.stringify((config as { driver?: unknown }).driver)}`);
  }
  const store = withValidation(driver, config.hooks);
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
