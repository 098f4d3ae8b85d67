/**
 * Where a replica stands in the feed it follows (table `replication_position`, migration 0003). The position is
 * written in the same transaction as the changes of the page that moves it, guarded by the old value, so a crash
 * or a second follower can never apply a page twice or skip one.
 */
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../meta/tables.ts';
import type { Db, Tx } from '../meta/db.ts';
import { now } from '../meta/db.ts';
import { GENESIS } from './feed-format.ts';

interface PositionTable {
  name: string;
  source: string;
  seq: number;
  chain: string;
  epoch: number;
  updated_at: string;
}

type ReplDb = Database & { replication_position: PositionTable };

export interface Position {
  seq: number;
  chain: string;
  /** 0 until the first page is applied: any epoch is accepted then. */
  epoch: number;
}

export const START: Position = { seq: 0, chain: GENESIS, epoch: 0 };
const NAME = 'primary';

const q = (db: Db | Tx) => db as unknown as Kysely<ReplDb> | Transaction<ReplDb>;

export async function readPosition(db: Db): Promise<Position> {
  const r = await q(db).selectFrom('replication_position').selectAll().where('name', '=', NAME).executeTakeFirst();
  return r ? { seq: Number(r.seq), chain: r.chain, epoch: Number(r.epoch) } : START;
}

/** Moves the position from `from` to `to`; throws when another writer moved it first (the page is then rolled back). */
export async function advancePosition(tx: Tx, source: string, from: Position, to: Position): Promise<void> {
  const t = q(tx);
  const values = { seq: to.seq, chain: to.chain, epoch: to.epoch, source, updated_at: now() };
  const existing = await t.selectFrom('replication_position').selectAll().where('name', '=', NAME).executeTakeFirst();
  if (!existing) {
    if (from.seq !== 0 || from.epoch !== 0) throw new Error('replication position vanished while applying a page');
    await t.insertInto('replication_position').values({ name: NAME, ...values }).execute();
    return;
  }
  const r = await t
    .updateTable('replication_position')
    .set(values)
    .where('name', '=', NAME)
    .where('seq', '=', from.seq)
    .where('chain', '=', from.chain)
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) throw new Error('replication position moved while applying a page (two followers on one database?)');
}
