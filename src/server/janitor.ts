/**
 * Periodic housekeeping: expired upload sessions (metadata row and bytes) and upload bytes no session
 * owns any more (a crash between the two deletes). Runs every few minutes, and once at start.
 */
import type { Services } from './services.ts';
import { takeExpiredUploads, uploadIds } from '../meta/uploads.ts';

const EVERY_MS = 5 * 60_000;
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

export function startJanitor(s: Services): () => void {
  const run = () =>
    sweepUploads(s).then(
      (n) => n && s.log.info({ removed: n }, 'expired upload sessions removed'),
      (e) => s.log.warn({ err: e }, 'upload sweep failed'),
    );
  void run();
  const t = setInterval(run, EVERY_MS);
  t.unref();
  return () => clearInterval(t);
}
