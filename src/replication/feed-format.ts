/**
 * The replication feed on the wire, shared by the primary (which builds pages) and replicas (which check them).
 *
 * A page is `{ head, signature, events }`. The head names the range of the primary's event log the page covers,
 * `(from, to]`, and a hash chain: `chain(seq) = sha256hex(chain(previous replicable event) + canonical(event))`,
 * starting from GENESIS. `head.prev` is the chain at `from`, `head.hash` the chain at `to`. The primary signs the
 * canonical JSON of the head; a replica checks the signature, that `from` is where it stands, that `prev` is the
 * chain value it stored (else a fork), and recomputes the chain over the events (else they were altered) — all
 * before it applies anything.
 */
import { createHash } from 'node:crypto';
import { redactSecrets } from '../util/redact.ts';

export const FEED_VERSION = 1;
export const GENESIS = '0'.repeat(64);

/** Event kinds a replica reproduces. Users, tokens and bindings stay on the node that owns them. */
export const REPLICATED_KINDS = /^(repository|asset|tag|trust\.key)\./;

export interface FeedEvent {
  seq: number;
  at: string;
  kind: string;
  repo: string | null;
  path: string | null;
  digest: string | null;
  actor: string | null;
  data: Record<string, unknown> | null;
}

export interface FeedHead {
  v: number;
  /** Exclusive start: the sequence number the replica asked `since`. */
  from: number;
  /** Inclusive end: the last event (of any kind) this page accounts for. */
  to: number;
  /** The primary's last event when the page was built: `latest - to` is how far behind the reader is. */
  latest: number;
  prev: string;
  hash: string;
  count: number;
  time: string;
  epoch: number;
  /** Fingerprint of the signing key (sha256 of its SPKI DER, hex). */
  key: string;
}

export interface FeedPage {
  head: FeedHead;
  /** base64 signature over `canonicalJson(head)`: Ed25519, or ECDSA P-256/SHA-256 in IEEE P1363 form. */
  signature: string;
  events: FeedEvent[];
}

/** JSON with object keys sorted at every level and no whitespace: one byte string per value. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'number' && !Number.isFinite(v)) throw new TypeError('non-finite number in canonical JSON');
    return JSON.stringify(v ?? null);
  }
  if (Array.isArray(v)) return '[' + v.map(canonicalJson).join(',') + ']';
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson(o[k])).join(',') + '}';
}

export function chainStep(prev: string, e: FeedEvent): string {
  return createHash('sha256').update(prev).update(canonicalJson(e)).digest('hex');
}

export function chainOver(prev: string, events: readonly FeedEvent[]): string {
  let h = prev;
  for (const e of events) h = chainStep(h, e);
  return h;
}

/** The shipped form of an event: exactly these fields, so both sides hash the same thing. */
export function toFeedEvent(e: FeedEvent): FeedEvent {
  // Only repository events carry configuration; asset metadata and tags are content and go unchanged. The log
  // keeps secrets out since session 2 (meta/repos.ts); older events may still hold some, so strip them again.
  const data = e.kind.startsWith('repository.') ? (redactSecrets(e.data) as Record<string, unknown> | null) : e.data;
  return { seq: e.seq, at: e.at, kind: e.kind, repo: e.repo, path: e.path, digest: e.digest, actor: e.actor, data };
}
