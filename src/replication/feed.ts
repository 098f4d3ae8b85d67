/**
 * The primary's side of the feed: pages of replicable events with a signed head. The hash chain over the log is
 * kept in memory (one hex string per replicable event), extended as the log grows and rebuilt from the log
 * at start, so a page from any position costs one lookup, not a rehash of the whole history.
 */
import type { Db } from '../meta/db.ts';
import { lastEventSeq, listEvents } from '../meta/events.ts';
import { getSetting } from '../meta/settings.ts';
import { FEED_VERSION, GENESIS, REPLICATED_KINDS, chainStep, toFeedEvent, type FeedEvent, type FeedPage } from './feed-format.ts';
import type { FeedSigner } from './keys.ts';

const PAGE_EVENTS = 500;
/** How often a waiting feed request looks for new events: changes reach replicas well within a second. */
const WAIT_POLL_MS = 150;
export const EPOCH_SETTING = 'replication.epoch';

export class ChainIndex {
  readonly #db: Db;
  /** Sequence numbers of replicable events, ascending, and the chain value after each. */
  readonly #seqs: number[] = [];
  readonly #hashes: string[] = [];
  /** Highest sequence number read from the log (of any kind). */
  #through = 0;
  #extending: Promise<void> | null = null;

  constructor(db: Db) {
    this.#db = db;
  }

  get through(): number {
    return this.#through;
  }

  /** Reads the log past what is indexed (one reader at a time). */
  extend(): Promise<void> {
    this.#extending ??= (async () => {
      try {
        for (;;) {
          const events = await listEvents(this.#db, { since: this.#through, limit: 1000 });
          for (const e of events) {
            if (REPLICATED_KINDS.test(e.kind)) {
              this.#hashes.push(chainStep(this.#hashes.at(-1) ?? GENESIS, toFeedEvent(e)));
              this.#seqs.push(e.seq);
            }
            this.#through = e.seq;
          }
          if (events.length < 1000) return;
        }
      } finally {
        this.#extending = null;
      }
    })();
    return this.#extending;
  }

  /** The chain value at `seq` (after every replicable event ≤ seq); `seq` must be ≤ `through`. */
  at(seq: number): string {
    let lo = 0;
    let hi = this.#seqs.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.#seqs[mid] <= seq) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? GENESIS : this.#hashes[found];
  }
}

export class FeedAheadError extends Error {}

export interface PageOptions {
  since: number;
  waitMs: number;
  signal?: AbortSignal;
  /** Overrides the page size (tests build multi-page feeds with few events). */
  limit?: number;
}

export async function buildPage(db: Db, chain: ChainIndex, signer: FeedSigner, o: PageOptions): Promise<FeedPage> {
  let latest = await lastEventSeq(db);
  if (o.since > latest) {
    throw new FeedAheadError(`the feed ends at ${latest}; a reader at ${o.since} is ahead of this primary (restored from an older backup, or a different primary)`);
  }
  const deadline = Date.now() + o.waitMs;
  while (latest === o.since && Date.now() < deadline && !o.signal?.aborted) {
    await new Promise((r) => setTimeout(r, WAIT_POLL_MS).unref());
    latest = await lastEventSeq(db);
  }
  const rows = await listEvents(db, { since: o.since, limit: o.limit ?? PAGE_EVENTS });
  const to = rows.length ? rows[rows.length - 1].seq : o.since;
  if (chain.through < to) await chain.extend();
  const events: FeedEvent[] = rows.filter((e) => REPLICATED_KINDS.test(e.kind)).map(toFeedEvent);
  const epoch = Number((await getSetting(db, EPOCH_SETTING)) ?? 1);
  const head = {
    v: FEED_VERSION,
    from: o.since,
    to,
    latest: Math.max(latest, to),
    prev: chain.at(o.since),
    hash: chain.at(to),
    count: events.length,
    time: new Date().toISOString(),
    epoch,
    key: signer.fingerprint,
  };
  return { head, signature: signer.sign(head), events };
}
