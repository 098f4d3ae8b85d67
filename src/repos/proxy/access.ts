/**
 * When cached proxy objects were last read, for retention (retention.ts: "remove what nobody pulled for N days").
 * A read must stay a read: no event (events feed replication) and no write per request. So a node notes reads in
 * memory and flushes them in batches (the janitor, every minute, and once more on shutdown), writing each asset at
 * most once an hour — accessed_at may lag the last read by about that much, which day-sized retention tolerates.
 * Notes lost in a crash cost nothing but an hour's precision: the next read notes the asset again.
 */
import type { Services } from '../../server/services.ts';
import { withTx } from '../../meta/db.ts';
import { touchAssets } from '../../meta/assets.ts';
import { remember } from './runtime.ts';

/** A node writes one asset's accessed_at at most this often. */
export const ACCESS_WRITE_EVERY_MS = 60 * 60_000;
const MAX_PENDING = 100_000;
const BATCH = 500;

interface AccessState {
  /** repoId + path → the asset and when it was read, waiting for the next flush. */
  pending: Map<string, { repoId: number; path: string; at: string }>;
  /** repoId + path → when this node last wrote its accessed_at (ms); bounded, oldest forgotten first. */
  written: Map<string, number>;
}

const states = new WeakMap<Services, AccessState>();

function stateOf(s: Services): AccessState {
  let st = states.get(s);
  if (!st) states.set(s, (st = { pending: new Map(), written: new Map() }));
  return st;
}

/** Notes a read of a cached asset of a proxy repository (cheap: a map lookup; no I/O). */
export function noteAccess(s: Services, asset: { repoId: number; path: string }): void {
  const st = stateOf(s);
  const key = `${asset.repoId}\0${asset.path}`;
  const t = Date.now();
  if ((st.written.get(key) ?? -Infinity) > t - ACCESS_WRITE_EVERY_MS) return;
  if (!st.pending.has(key) && st.pending.size >= MAX_PENDING) return;
  st.pending.set(key, { repoId: asset.repoId, path: asset.path, at: new Date(t).toISOString() });
}

/**
 * Writes the noted reads, one UPDATE per asset, a few hundred per transaction. Returns how many were written.
 * On failure the batch is dropped (logged by the caller); those assets are noted again on their next read.
 */
export async function flushAccess(s: Services): Promise<number> {
  const st = stateOf(s);
  if (!st.pending.size) return 0;
  const reads = [...st.pending.entries()];
  st.pending.clear();
  for (let i = 0; i < reads.length; i += BATCH) {
    const batch = reads.slice(i, i + BATCH);
    await withTx(s.meta.db, (tx) => touchAssets(tx, batch.map(([, r]) => r)));
    const t = Date.now();
    for (const [key] of batch) remember(st.written, key, t);
  }
  return reads.length;
}
