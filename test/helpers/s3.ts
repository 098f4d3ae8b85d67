/**
 * A throwaway S3-protocol server for tests: `s3rver` (npm) on 127.0.0.1, port 0, storing in a temp directory,
 * with one bucket. Tests that need it skip with a visible reason when it cannot start (the package missing or
 * the loopback port refused); CI has it as a dev dependency, so CI never skips.
 *
 * s3rver keeps each object as `<dir>/<bucket>/<key>._S3rver_object` and reports the file's mtime as
 * LastModified: `ageObject` back-dates one, which no S3 API can do (the sweep tests need old temp objects).
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The slice of s3rver's API used here (it ships no types). */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverConstructor = new (opts: {
  address: string;
  port: number;
  directory: string;
  silent: boolean;
  configureBuckets: { name: string }[];
}) => S3rverInstance;

export interface TestS3 {
  endpoint: string;
  bucket: string;
  region: string;
  /** s3rver's default account; any signature made with it is accepted. */
  accessKeyId: string;
  secretAccessKey: string;
  /** Sets the LastModified of an existing object to `ageMs` ago. */
  ageObject(key: string, ageMs: number): Promise<void>;
  stop(): Promise<void>;
}

/** Where a test S3 server (s3rver, moto) is and how to sign for it. */
export type S3Endpoint = Pick<TestS3, 'endpoint' | 'bucket' | 'region' | 'accessKeyId' | 'secretAccessKey'>;

/** The s3 blob driver's settings for a test server (path-style: loopback has no bucket subdomains). */
export function s3DriverSettings(t: S3Endpoint) {
  return { bucket: t.bucket, endpoint: t.endpoint, region: t.region, forcePathStyle: true, accessKeyId: t.accessKeyId, secretAccessKey: t.secretAccessKey };
}

/** Starts s3rver with an empty bucket, or returns a skip reason when it cannot start. */
export async function startTestS3(bucket = 'granary-test'): Promise<TestS3 | string> {
  let S3rver: S3rverConstructor;
  try {
    S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;
  } catch (e) {
    return `s3rver is not installed (${(e as Error).message}); run npm install`;
  }
  const directory = await mkdtemp(join(tmpdir(), 'granary-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, directory, silent: true, configureBuckets: [{ name: bucket }] });
  let address: AddressInfo;
  try {
    address = await server.run();
  } catch (e) {
    await rm(directory, { recursive: true, force: true });
    return `s3rver could not start on 127.0.0.1 (${(e as Error).message})`;
  }
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    bucket,
    region: 'us-east-1',
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    async ageObject(key, ageMs) {
      const when = new Date(Date.now() - ageMs);
      await utimes(join(directory, bucket, `${key}._S3rver_object`), when, when);
    },
    async stop() {
      await server.close();
      // Not removed now: s3rver finishes writing the body of a request whose client died (a node killed
      // mid-upload) after its server closed, and would throw ENOENT into the test runner. Gone when the test
      // process exits.
      process.once('exit', () => rmSync(directory, { recursive: true, force: true }));
    },
  };
}
