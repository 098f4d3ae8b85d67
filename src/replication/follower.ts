/**
 * A replica's loop: long-poll the primary's feed from the stored position, verify the page (signature, position,
 * hash chain), fetch the blobs it binds (eager mode), then apply the in-scope events and the new position in one
 * transaction. A refused page applies nothing, is logged and counted, and marks the node degraded; the loop keeps
 * retrying with backoff, so a primary that comes back (or stops lying) is followed again from where we stand.
 */
import picomatch from 'picomatch';
import type { Logger } from 'pino';
import type { BlobStore } from '../blobs/types.ts';
import { withTx, type Db } from '../meta/db.ts';
import { ApplyError, applyEvent, blobsNeeded } from './apply.ts';
import { GENESIS, REPLICATED_KINDS, type FeedEvent } from './feed-format.ts';
import type { FeedVerifier } from './keys.ts';
import { advancePosition, readPosition, type Position } from './position.ts';
import type { BlobSources } from './sources.ts';
import { FeedRefusedError, verifyPage } from './verify.ts';
import type { ReplicationMetrics } from './metrics.ts';
import { abortableSleep } from '../util/abortable-sleep.ts';

export interface FollowerOptions {
  db: Db;
  /** The local store (not the lazy wrapper): blobs are fetched into it. */
  blobs: BlobStore;
  primary: string;
  sources: BlobSources;
  key: FeedVerifier;
  repositories: string[];
  eager: boolean;
  waitSeconds: number;
  log: Logger;
  metrics: ReplicationMetrics;
  /** Called after a page changed repositories (clears the node's repository cache). */
  onRepositoriesChanged: () => void;
  /** Checked before each request: a promoted node stops following. */
  stillReplica: () => Promise<boolean>;
}

export interface FollowerStatus {
  primary: string;
  position: number;
  epoch: number;
  /** The primary's last event at the last contact. */
  primaryLatest: number | null;
  lag: number | null;
  lastContact: string | null;
  lastApplied: string | null;
  /** Why the last page was refused, until a page is accepted again. */
  refused: { reason: string; message: string; at: string } | null;
  /** The last connection or apply error, until the next successful contact. */
  error: string | null;
  stopped: boolean;
}

/** Retries of an unreachable primary back off up to this: it is also how late a returning primary is noticed. */
const MAX_BACKOFF_MS = 5_000;
const BLOB_CONCURRENCY = 6;
const IDLE_MS = 1_000;

export class Follower {
  readonly #o: FollowerOptions;
  readonly #inScope: (name: string) => boolean;
  #pos: Position = { seq: 0, chain: GENESIS, epoch: 0 };
  #abort = new AbortController();
  #loop: Promise<void> | null = null;
  readonly status: FollowerStatus;

  constructor(o: FollowerOptions) {
    this.#o = o;
    this.#inScope = picomatch(o.repositories.length ? o.repositories : ['**']);
    this.status = {
      primary: o.primary,
      position: 0,
      epoch: 0,
      primaryLatest: null,
      lag: null,
      lastContact: null,
      lastApplied: null,
      refused: null,
      error: null,
      stopped: false,
    };
  }

  async start(): Promise<void> {
    this.#setPos(await readPosition(this.#o.db));
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
    await this.#o.sources.close();
  }

  #setPos(p: Position): void {
    this.#pos = p;
    this.status.position = p.seq;
    this.status.epoch = p.epoch;
    this.#o.metrics.position.set(p.seq);
    if (this.status.primaryLatest !== null) {
      this.status.lag = Math.max(0, this.status.primaryLatest - p.seq);
      this.#o.metrics.lag.set(this.status.lag);
    }
  }

  async #run(): Promise<void> {
    let backoff = 250;
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      try {
        if (!(await this.#o.stillReplica())) {
          this.#o.log.warn('replication: this node was promoted; no longer following the primary');
          break;
        }
        const started = Date.now();
        const moved = await this.step();
        backoff = 250;
        // A primary that does not hold long polls (waitSeconds 0) answers an empty page at once: do not spin.
        if (!moved && Date.now() - started < IDLE_MS) await this.#sleep(IDLE_MS);
      } catch (e) {
        if (signal.aborted) break;
        this.#fail(e as Error);
        await this.#sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
    this.status.stopped = true;
  }

  /** A pause that stop() cuts short. */
  #sleep(ms: number): Promise<void> {
    return abortableSleep(ms, this.#abort.signal);
  }

  #fail(e: Error): void {
    if (e instanceof FeedRefusedError) {
      this.status.refused = { reason: e.reason, message: e.message, at: new Date().toISOString() };
      this.#o.metrics.refused.inc({ reason: e.reason });
      this.#o.log.error({ reason: e.reason, primary: this.#o.primary, position: this.#pos.seq }, `replication: feed refused: ${e.message}`);
      return;
    }
    this.status.error = e.message;
    this.#o.metrics.errors.inc();
    this.#o.log.warn({ primary: this.#o.primary, position: this.#pos.seq }, `replication: ${e.message}`);
  }

  /** One feed request and, if it verifies, one applied page; true when the position moved. */
  async step(): Promise<boolean> {
    const url = `${this.#o.primary}/api/v1/replication/feed?since=${this.#pos.seq}&wait=${this.#o.waitSeconds}`;
    // One controller per request, fired by stop() or a deadline (the long poll plus slack for a slow primary).
    const ac = new AbortController();
    const onStop = () => ac.abort();
    this.#abort.signal.addEventListener('abort', onStop);
    const timer = setTimeout(onStop, (this.#o.waitSeconds + 30) * 1000);
    let res: Awaited<ReturnType<BlobSources['fetch']>>;
    let text: string;
    try {
      res = await this.#o.sources.fetch(url, { signal: ac.signal });
      text = await res.text();
    } catch (e) {
      const cause = (e as Error & { cause?: Error }).cause;
      throw new Error(`primary ${this.#o.primary} unreachable: ${cause?.message ?? (e as Error).message}`);
    } finally {
      clearTimeout(timer);
      this.#abort.signal.removeEventListener('abort', onStop);
    }
    this.status.lastContact = new Date().toISOString();
    this.#o.metrics.lastContact.set(Date.now() / 1000);
    if (res.status === 409) throw new FeedRefusedError('rewind', `primary answered: ${errorMessage(text)}`);
    if (res.status !== 200) throw new Error(`primary ${this.#o.primary} answered HTTP ${res.status}: ${errorMessage(text)}`);
    let page: unknown;
    try {
      page = JSON.parse(text);
    } catch {
      throw new FeedRefusedError('malformed', 'feed page is not JSON');
    }
    const verdict = verifyPage(page, this.#pos, this.#o.key);
    const events = (page as { events: FeedEvent[] }).events;
    const latest = (page as { head: { latest: number } }).head.latest;
    if (verdict.kind === 'new-epoch') {
      // A promoted or re-keyed primary numbers its log afresh: read it from the start (applying is idempotent).
      const next = { seq: 0, chain: GENESIS, epoch: verdict.epoch };
      await withTx(this.#o.db, (tx) => advancePosition(tx, this.#o.primary, this.#pos, next));
      this.#o.log.warn({ epoch: verdict.epoch }, 'replication: the primary moved to a new epoch; re-reading its feed from the start');
      this.#setPos(next);
      return true;
    }
    const wanted = events.filter((e) => REPLICATED_KINDS.test(e.kind) && e.repo !== null && this.#inScope(e.repo));
    if (this.#o.eager) await this.#fetchBlobs(blobsNeeded(wanted));
    const from = this.#pos;
    try {
      await withTx(this.#o.db, async (tx) => {
        for (const e of wanted) await applyEvent(tx, e);
        await advancePosition(tx, this.#o.primary, from, verdict.to);
      });
    } catch (e) {
      if (e instanceof ApplyError) throw new FeedRefusedError('malformed', e.message);
      throw e;
    }
    this.status.primaryLatest = latest;
    this.#setPos(verdict.to);
    this.status.refused = null;
    this.status.error = null;
    if (wanted.length) {
      this.status.lastApplied = new Date().toISOString();
      this.#o.metrics.applied.inc(wanted.length);
    }
    if (wanted.some((e) => e.kind.startsWith('repository.'))) this.#o.onRepositoriesChanged();
    return verdict.to.seq !== from.seq;
  }

  /** Every blob the page binds is stored and verified before any metadata naming it is committed. */
  async #fetchBlobs(need: Map<string, number>): Promise<void> {
    const queue = [...need];
    // A few at a time: one request per small blob is latency-bound, many at once would swamp the source.
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const [digest, size] = next;
        if (!(await this.#o.blobs.stat(digest))) await this.#o.sources.fetchInto(this.#o.blobs, digest, size);
      }
    };
    await Promise.all(Array.from({ length: BLOB_CONCURRENCY }, worker));
  }
}

function errorMessage(text: string): string {
  try {
    const j = JSON.parse(text) as { error?: { message?: string } };
    if (j.error?.message) return j.error.message;
  } catch {
    // not JSON
  }
  return text.slice(0, 200);
}
