/**
 * Start-sweep helper of the s3 driver: aborts multipart uploads left by crashes (a killed node's blob write or
 * multipart copy). Uploads this process is running (`ctx.active`) and young ones are left alone.
 */
import { AbortMultipartUploadCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { statusOf, type S3Context } from './s3-common.ts';

/** Aborts multipart uploads under the prefix left by crashes; servers without ListMultipartUploads are skipped. */
export async function sweepMultipartUploads(ctx: S3Context, stale: (t: number) => boolean): Promise<number> {
  const { client, bucket, layout } = ctx;
  let removed = 0;
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  do {
    let page;
    try {
      page = await client.send(
        new ListMultipartUploadsCommand({
          Bucket: bucket,
          Prefix: layout.prefix,
          ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
          ...(uploadIdMarker === undefined ? {} : { UploadIdMarker: uploadIdMarker }),
        }),
      );
    } catch (err) {
      const status = statusOf(err);
      if (status === 501 || status === 405 || (err as { name?: string }).name === 'NotImplemented') return removed;
      throw err;
    }
    for (const u of page.Uploads ?? []) {
      if (u.Key === undefined || u.UploadId === undefined || ctx.active.has(u.Key)) continue;
      if (!stale(u.Initiated?.getTime() ?? 0)) continue;
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
      removed++;
    }
    keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
    uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
  } while (keyMarker !== undefined);
  return removed;
}
