/**
 * The event log: the spine of replication, webhooks and audit. Every change appends exactly one event in the
 * same transaction as the change itself (callers pass a `Tx`, so an event can never be written outside one).
 * Sequence numbers are gap-free: allocated as max+1 under the writer lock (SQLite has one writer; on
 * PostgreSQL a transaction-scoped advisory lock serialises appenders across nodes).
 */
import { sql } from 'kysely';
import type { Db, Tx } from './db.ts';
import type { EventRow } from './tables.ts';
import { now, serialize } from './db.ts';

export interface NewEvent {
  kind: string;
  repo?: string | null;
  path?: string | null;
  digest?: string | null;
  actor?: string | null;
  data?: Record<string, unknown> | null;
}

export interface Event extends Omit<EventRow, 'data'> {
  data: Record<string, unknown> | null;
}

/** Arbitrary constant naming the event-sequence lock. */
const EVENT_LOCK = 0x6772616e; // "gran"

export async function appendEvent(tx: Tx, e: NewEvent): Promise<number> {
  await serialize(tx, EVENT_LOCK);
  const row = await tx
    .selectFrom('events')
    .select((eb) => eb.fn.max('seq').as('max'))
    .executeTakeFirst();
  const seq = Number(row?.max ?? 0) + 1;
  await tx
    .insertInto('events')
    .values({
      seq,
      at: now(),
      repo: e.repo ?? null,
      kind: e.kind,
      path: e.path ?? null,
      digest: e.digest ?? null,
      actor: e.actor ?? null,
      data: e.data ? JSON.stringify(e.data) : null,
    })
    .execute();
  return seq;
}

function decode(r: EventRow): Event {
  return { ...r, seq: Number(r.seq), data: r.data ? (JSON.parse(r.data) as Record<string, unknown>) : null };
}

export async function listEvents(
  db: Db,
  opts: { since?: number; limit?: number; repo?: string; repos?: string[] } = {},
): Promise<Event[]> {
  let q = db
    .selectFrom('events')
    .selectAll()
    .where('seq', '>', opts.since ?? 0)
    .orderBy('seq')
    .limit(Math.min(opts.limit ?? 100, 1000));
  if (opts.repo) q = q.where('repo', '=', opts.repo);
  if (opts.repos) q = opts.repos.length ? q.where('repo', 'in', opts.repos) : q.where(sql<boolean>`1 = 0`);
  return (await q.execute()).map(decode);
}

export async function lastEventSeq(db: Db): Promise<number> {
  const row = await db.selectFrom('events').select((eb) => eb.fn.max('seq').as('max')).executeTakeFirst();
  return Number(row?.max ?? 0);
}
