/**
 * Everything a replica checks about a feed page before applying any of it. Pure: no I/O, so each refusal is
 * easy to test and nothing can be half-applied by a check that fails late.
 */
import { FEED_VERSION, chainOver, type FeedPage } from './feed-format.ts';
import type { FeedVerifier } from './keys.ts';
import type { Position } from './position.ts';

export type RefusalReason = 'malformed' | 'signature' | 'rewind' | 'fork' | 'altered' | 'epoch';

export class FeedRefusedError extends Error {
  readonly reason: RefusalReason;
  constructor(reason: RefusalReason, message: string) {
    super(message);
    this.name = 'FeedRefusedError';
    this.reason = reason;
  }
}

export type Verdict =
  | { kind: 'apply'; to: Position }
  /** A correctly signed feed of a later epoch (the primary was promoted or re-keyed): read it from its start. */
  | { kind: 'new-epoch'; epoch: number };

const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isHex64 = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);

function checkShape(p: unknown): asserts p is FeedPage {
  const page = p as FeedPage;
  const h = page?.head;
  const ok =
    h &&
    typeof page.signature === 'string' &&
    Array.isArray(page.events) &&
    h.v === FEED_VERSION &&
    isInt(h.from) &&
    isInt(h.to) &&
    isInt(h.latest) &&
    isInt(h.count) &&
    isInt(h.epoch) &&
    isHex64(h.prev) &&
    isHex64(h.hash) &&
    typeof h.time === 'string' &&
    typeof h.key === 'string';
  if (!ok) throw new FeedRefusedError('malformed', 'feed page does not have the expected shape');
}

export function verifyPage(page: unknown, pos: Position, key: FeedVerifier): Verdict {
  checkShape(page);
  const h = page.head;
  // The signature first: nothing in an unsigned head may steer what happens next.
  if (!key.verify(h, page.signature)) throw new FeedRefusedError('signature', `feed head ${h.from}..${h.to} is not signed by the configured primary key`);
  if (h.epoch < pos.epoch) throw new FeedRefusedError('epoch', `feed epoch ${h.epoch} is older than epoch ${pos.epoch} already followed (a fenced primary?)`);
  if (pos.epoch !== 0 && h.epoch > pos.epoch) return { kind: 'new-epoch', epoch: h.epoch };
  if (h.from !== pos.seq) throw new FeedRefusedError('rewind', `feed page starts at ${h.from}, this replica stands at ${pos.seq}`);
  if (h.to < h.from || h.latest < h.to) throw new FeedRefusedError('rewind', `feed page range ${h.from}..${h.to} (latest ${h.latest}) runs backwards`);
  if (h.prev !== pos.chain) throw new FeedRefusedError('fork', `feed chain at ${h.from} differs from the one applied here: the primary's history was rewritten`);
  if (h.count !== page.events.length) throw new FeedRefusedError('altered', `feed head counts ${h.count} events, the page holds ${page.events.length}`);
  let last = h.from;
  for (const e of page.events) {
    if (!isInt(e?.seq) || e.seq <= last || e.seq > h.to) throw new FeedRefusedError('rewind', `feed event ${e?.seq} is out of order or outside ${h.from}..${h.to}`);
    last = e.seq;
  }
  if (chainOver(h.prev, page.events) !== h.hash) throw new FeedRefusedError('altered', `feed events ${h.from}..${h.to} do not match the signed hash chain`);
  return { kind: 'apply', to: { seq: h.to, chain: h.hash, epoch: h.epoch } };
}
