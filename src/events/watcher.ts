/**
 * Follows the event log to keep node-local caches honest: changes made by another process (another node on
 * the same database, the CLI working on the data dir) clear the auth and repository caches within one poll.
 * Changes made through this process clear them at once, without waiting for a poll.
 */
import type { Db } from '../meta/db.ts';
import { lastEventSeq, listEvents } from '../meta/events.ts';

const POLL_MS = 1_000;
/** Event kinds that change who may do what, or what a repository is. */
const AUTH_KINDS = /^(user|token|binding|repository)\./;

export class ChangeWatcher {
  readonly #db: Db;
  readonly #onAuthChange: () => void;
  #seq = 0;
  #timer: NodeJS.Timeout | null = null;
  #polling: Promise<void> | null = null;

  constructor(db: Db, onAuthChange: () => void) {
    this.#db = db;
    this.#onAuthChange = onAuthChange;
  }

  async start(): Promise<void> {
    this.#seq = await lastEventSeq(this.#db);
    this.#timer = setInterval(() => void this.poll().catch(() => {}), POLL_MS);
    this.#timer.unref();
  }

  /** Reads the events since the last poll and clears caches if any of them matter. */
  poll(): Promise<void> {
    this.#polling ??= (async () => {
      try {
        for (;;) {
          const events = await listEvents(this.#db, { since: this.#seq, limit: 1000 });
          if (!events.length) return;
          this.#seq = events[events.length - 1].seq;
          if (events.some((e) => AUTH_KINDS.test(e.kind))) this.#onAuthChange();
          if (events.length < 1000) return;
        }
      } finally {
        this.#polling = null;
      }
    })();
    return this.#polling;
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}
