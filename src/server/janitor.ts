/**
 * Periodic housekeeping: expired upload sessions (metadata row and bytes) and upload bytes no session
 * owns any more (a crash between the two deletes), every few minutes; proxy retention (cached objects nobody
 * read for a repository's `unusedDays`), hourly; the proxy's noted reads written every minute. Each runs once at
 * start too; stopping writes the reads still noted.
 */
import type { Services } from './services.ts';
import { takeExpiredUploads, uploadIds } from '../meta/uploads.ts';
import { flushAccess, sweepRetention } from '../repos/proxy/index.ts';

const EVERY_MS = 5 * 60_000;
const RETENTION_EVERY_MS = 60 * 60_000;
const ACCESS_FLUSH_EVERY_MS = 60_000;
/** Upload bytes without a session are kept this long, so a session being created right now is not hit. */
const ORPHAN_GRACE_MS = 60 * 60_000;

export async function sweepUploads(s: Services): Promise<number> {
  let n = 0;
  for (const id of await takeExpiredUploads(s.meta.db)) {
    await s.blobs.uploads.abort(id);
    n++;
  }
  const live = await uploadIds(s.meta.db);
  const cutoff = Date.now() - ORPHAN_GRACE_MS;
  for await (const u of s.blobs.uploads.list()) {
    if (!live.has(u.id) && u.modifiedAt < cutoff) {
      await s.blobs.uploads.abort(u.id);
      n++;
    }
  }
  return n;
}

/** Runs `task` now and every `ms` (never twice at once); returns the stopper. */
function every(ms: number, task: () => Promise<unknown>): () => void {
  let running = false;
  const run = () => {
    if (running) return;
    running = true;
    void task().finally(() => (running = false));
  };
  run();
  const t = setInterval(run, ms);
  t.unref();
  return () => clearInterval(t);
}

/** Starts the housekeeping tasks; the returned function stops them and writes the proxy reads still noted. */
export function startJanitor(s: Services): () => Promise<void> {
  const flush = () => flushAccess(s).catch((e: unknown) => s.log.warn({ err: e }, 'writing proxy access times failed'));
  const stops = [
    every(EVERY_MS, () =>
      sweepUploads(s).then(
        (n) => n && s.log.info({ removed: n }, 'expired upload sessions removed'),
        (e) => s.log.warn({ err: e }, 'upload sweep failed'),
      ),
    ),
    // Per-repository counts are logged by the sweep itself.
    every(RETENTION_EVERY_MS, () => sweepRetention(s).catch((e: unknown) => s.log.warn({ err: e }, 'proxy retention sweep failed'))),
    every(ACCESS_FLUSH_EVERY_MS, flush),
  ];
  return async () => {
    for (const stop of stops) stop();
    await flush();
  };
}
