/**
 * Garbage collection of blobs: removes the bytes no asset names any more (deleted files, unlinked layers,
 * replaced manifests). Metadata is the source of truth — every format records what it references as
 * assets — so the live set is the set of asset digests.
 *
 * Safety against racing writers: a blob is written before the transaction that names it commits, so only
 * blobs older than a grace period are candidates (a dedup put refreshes the blob's time), and each candidate
 * is checked again just before it is deleted.
 */
import type { BlobStore } from '../blobs/types.ts';
import type { Db } from '../meta/db.ts';
import { countAssetsByDigest, referencedDigests } from '../meta/assets.ts';

export interface GcOptions {
  /** Only blobs unmodified for this long are removed (default 1 hour). */
  graceMs?: number;
  /** Report what would be removed, remove nothing. */
  dryRun?: boolean;
}

export interface GcReport {
  scanned: number;
  live: number;
  removed: number;
  bytesFreed: number;
  /** Unreferenced but younger than the grace period. */
  young: number;
  dryRun: boolean;
}

export const DEFAULT_GC_GRACE_MS = 60 * 60_000;

export async function collectGarbage(db: Db, blobs: BlobStore, opts: GcOptions = {}): Promise<GcReport> {
  const graceMs = opts.graceMs ?? DEFAULT_GC_GRACE_MS;
  const live = new Set<string>();
  for await (const d of referencedDigests(db)) live.add(d);
  const cutoff = Date.now() - graceMs;
  const report: GcReport = { scanned: 0, live: 0, removed: 0, bytesFreed: 0, young: 0, dryRun: opts.dryRun ?? false };
  for await (const b of blobs.list()) {
    report.scanned++;
    if (live.has(b.digest)) {
      report.live++;
      continue;
    }
    if (b.modifiedAt > cutoff) {
      report.young++;
      continue;
    }
    // Named since the live set was read? Then it is live after all.
    if ((await countAssetsByDigest(db, b.digest)) > 0) {
      report.live++;
      continue;
    }
    if (!report.dryRun && !(await blobs.delete(b.digest))) continue;
    report.removed++;
    report.bytesFreed += b.size;
  }
  return report;
}
