/** A tiny key/value table for server-wide state that must survive restarts (e.g. signing key ids). */
import type { Db } from './db.ts';

export async function getSetting(db: Db, key: string): Promise<string | null> {
  const r = await db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst();
  return r?.value ?? null;
}

export async function setSetting(db: Db, key: string, value: string): Promise<void> {
  await db
    .insertInto('settings')
    .values({ key, value })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
    .execute();
}
