/**
 * Server-side copies inside the bucket, whatever the size: one CopyObject up to `copyThreshold` (S3 refuses a
 * single copy above 5 GiB), otherwise a multipart upload whose parts are UploadPartCopy ranges of the source, at
 * most `queueSize` in flight. The bytes never pass through the node either way.
 *
 * Used to publish a verified temp object under its content key and to "touch" an existing blob (copy onto itself
 * with fresh metadata). The target appears only when CompleteMultipartUpload returns; any failure aborts the
 * multipart upload (best effort: `sweep` aborts what is left, on servers that list multipart uploads).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  UploadPartCopyCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { copySource, type S3Context } from './s3-common.ts';
import { MAX_PARTS, MIN_PART_SIZE } from './s3-writer.ts';

const MiB = 1024 * 1024;
/** Largest object a single CopyObject may copy (AWS; most S3-compatible servers follow it). */
export const MAX_SINGLE_COPY_BYTES = 5 * 1024 * MiB;
/** Largest part UploadPartCopy may copy. */
const MAX_COPY_PART = 5 * 1024 * MiB;
/** Largest object S3 stores. */
export const MAX_OBJECT_BYTES = 5 * 1024 * 1024 * MiB;

/** Part size for copying `size` bytes: the configured one, grown when it would take more than MAX_PARTS parts. */
export function copyPartSizeFor(size: number, configured: number): number {
  const needed = Math.ceil(size / MAX_PARTS);
  return Math.min(MAX_COPY_PART, Math.max(configured, needed, MIN_PART_SIZE));
}

/**
 * Copies `sourceKey` (of `size` bytes) to `targetKey`. `replaceMetadata` is needed to copy an object onto
 * itself with a single CopyObject (S3 refuses a copy that changes nothing); a multipart copy always writes a new
 * object, so it needs no such flag.
 */
export async function copyKey(
  ctx: S3Context,
  sourceKey: string,
  targetKey: string,
  size: number,
  opts: { replaceMetadata?: boolean } = {},
): Promise<void> {
  const { client, bucket } = ctx;
  if (size <= ctx.copyThreshold) {
    await client.send(
      new CopyObjectCommand({
        Bucket: bucket,
        Key: targetKey,
        CopySource: copySource(bucket, sourceKey),
        ...(opts.replaceMetadata ? { MetadataDirective: 'REPLACE' } : {}),
      }),
    );
    return;
  }
  const partSize = copyPartSizeFor(size, ctx.copyPartSize);
  const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: targetKey }));
  const uploadId = created.UploadId;
  if (uploadId === undefined) throw new Error('CreateMultipartUpload returned no UploadId');
  ctx.active.add(targetKey);
  try {
    const count = Math.ceil(size / partSize);
    const parts: CompletedPart[] = new Array(count);
    let next = 0;
    // `queueSize` workers take part numbers in turn, so at most that many copies run at once.
    const worker = async (): Promise<void> => {
      while (next < count) {
        const i = next++;
        const start = i * partSize;
        const end = Math.min(size, start + partSize) - 1;
        const res = await client.send(
          new UploadPartCopyCommand({
            Bucket: bucket,
            Key: targetKey,
            UploadId: uploadId,
            PartNumber: i + 1,
            CopySource: copySource(bucket, sourceKey),
            CopySourceRange: `bytes=${start}-${end}`,
          }),
        );
        parts[i] = { PartNumber: i + 1, ETag: res.CopyPartResult?.ETag };
      }
    };
    await Promise.all(Array.from({ length: Math.min(ctx.queueSize, count) }, worker));
    await client.send(
      new CompleteMultipartUploadCommand({ Bucket: bucket, Key: targetKey, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
    );
  } catch (err) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: targetKey, UploadId: uploadId })).catch(() => {});
    throw err;
  } finally {
    ctx.active.delete(targetKey);
  }
}
