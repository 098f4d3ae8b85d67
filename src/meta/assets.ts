/**
 * Assets: a repository path bound to a blob digest, with a media type and typed metadata.
 * Writes append their event in the same transaction.
 */
import { sql, type RawBuilder } from 'kysely';
import type { Db, DbCapabilities, Tx } from './db.ts';
import type { AssetRow } from './tables.ts';
import { capsOf, now } from './db.ts';
import { appendEvent } from './events.ts';

export interface Asset {
  id: number;
  repoId: number;
  path: string;
  digest: string;
  size: number;
  mediaType: string | null;
  metadata: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

function toAsset(r: AssetRow): Asset {
  return {
    id: Number(r.id),
    repoId: Number(r.repo_id),
    path: r.path,
    digest: r.digest,
    size: Number(r.size),
    mediaType: r.media_type,
    metadata: JSON.parse(r.metadata) as Record<string, unknown>,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export async function getAsset(db: Db, repoId: number, path: string): Promise<Asset | null> {
  const r = await db
    .selectFrom('assets')
    .selectAll()
    .where('repo_id', '=', repoId)
    .where('path', '=', path)
    .executeTakeFirst();
  return r ? toAsset(r) : null;
}

export interface PutAssetInput {
  repoId: number;
  repo: string;
  path: string;
  digest: string;
  size: number;
  mediaType?: string | null;
  metadata?: Record<string, unknown>;
  /** Only create: an asset already at the path — or one a concurrent writer is creating — is an AssetExistsError. */
  ifAbsent?: boolean;
}

/** putAsset with `ifAbsent` found the path taken (immutable versions: a release redeploy, a republished module). */
export class AssetExistsError extends Error {
  readonly path: string;
  constructor(path: string) {
    super(`${path} already exists`);
    this.name = 'AssetExistsError';
    this.path = path;
  }
}

/** Creates or replaces the asset at a path; returns the previous one (if any). */
export async function putAsset(tx: Tx, a: PutAssetInput, actor: string | null): Promise<{ asset: Asset; previous: Asset | null }> {
  const t = now();
  const previous = await getAsset(tx, a.repoId, a.path);
  if (a.ifAbsent && previous) throw new AssetExistsError(a.path);
  const values = {
    digest: a.digest,
    size: a.size,
    media_type: a.mediaType ?? null,
    metadata: JSON.stringify(a.metadata ?? {}),
    updated_at: t,
  };
  const row = previous
    ? await tx.updateTable('assets').set(values).where('id', '=', previous.id).returningAll().executeTakeFirstOrThrow()
    : await tx
        .insertInto('assets')
        .values({ ...values, repo_id: a.repoId, path: a.path, created_at: t })
        // Two writers of a new path at once (PostgreSQL runs them in parallel): the later one updates — or, when
        // only creating, inserts nothing (PostgreSQL waits for the first to commit) and loses.
        .onConflict((oc) => (a.ifAbsent ? oc.columns(['repo_id', 'path']).doNothing() : oc.columns(['repo_id', 'path']).doUpdateSet(values)))
        .returningAll()
        .executeTakeFirst();
  if (!row) throw new AssetExistsError(a.path);
  await appendEvent(tx, {
    kind: 'asset.put',
    repo: a.repo,
    path: a.path,
    digest: a.digest,
    actor,
    // Metadata rides along so a replica can reproduce the asset from the event alone.
    data: { size: a.size, mediaType: a.mediaType ?? null, metadata: a.metadata ?? {}, ...(previous ? { previous: previous.digest } : {}) },
  });
  return { asset: toAsset(row), previous };
}

export async function deleteAsset(tx: Tx, repo: { id: number; name: string }, path: string, actor: string | null): Promise<Asset | null> {
  const previous = await getAsset(tx, repo.id, path);
  if (!previous) return null;
  await tx.deleteFrom('assets').where('id', '=', previous.id).execute();
  await appendEvent(tx, { kind: 'asset.deleted', repo: repo.name, path, digest: previous.digest, actor });
  return previous;
}

export interface AssetQuery {
  repoIds?: number[];
  prefix?: string;
  /**
   * Exact matches on top-level metadata keys, as `String(stored) === String(wanted)` on scalars: a JSON string by
   * its value, a number by its JSON spelling (`1` matches "1", `1.5` "1.5"), `true`/`false`/`null` by those words.
   * A missing key, an array or an object never matches.
   */
  metadata?: Record<string, string | number | boolean>;
  digest?: string;
  /** Keyset pagination: paths after this one (within a single repository) or ids after this one. */
  afterId?: number;
  limit?: number;
}

/** Escapes LIKE wildcards so a path prefix is matched literally. */
function likePrefix(prefix: string): string {
  return prefix.replace(/[\\%_]/g, (c) => '\\' + c) + '%';
}

/** JSON.stringify's escape of U+0000, a regular expression finding it unescaped, and what PostgreSQL reads instead. */
const NUL_ESCAPE = String.raw`\u0000`;
const NUL_ESCAPE_RE = String.raw`(?<!\\)((?:\\\\)*)\\u0000`;
const NUL_STANDIN = String.raw`\1\\uffff`;

/**
 * True where metadata key `key` holds a scalar whose text is `want` (the AssetQuery.metadata rule), in SQL so a
 * page holds only matches. Keys are bound, never spliced into the SQL: SQLite gets a JSON path with the key as a
 * quoted label (JSON.stringify escapes dots, quotes and backslashes), PostgreSQL the key as text. Numbers are
 * compared by the spelling stored (`->` on SQLite, `::json ->>` on PostgreSQL), which is JSON.stringify's and so
 * String()'s — not by a SQL number rendered back to text, which would spell 1e21 or 0.1+0.2 differently.
 */
function metadataEquals(caps: DbCapabilities, key: string, want: string): RawBuilder<boolean> {
  if (caps.jsonKeys === 'json1') {
    const path = '$.' + JSON.stringify(key);
    return sql<boolean>`case json_type(metadata, ${path}) when 'text' then json_extract(metadata, ${path}) when 'array' then null when 'object' then null else metadata -> ${path} end = ${want}`;
  }
  // PostgreSQL refuses to decode the escape of U+0000 (one such string anywhere fails the whole query) and to bind
  // text holding it: U+0000 reads as U+FFFF on both sides instead — only an escape preceded by an even number of
  // backslashes, so a stored backslash followed by "u0000" stays as it is.
  const doc = sql`(case when strpos(metadata, ${NUL_ESCAPE}) > 0 then regexp_replace(metadata, ${NUL_ESCAPE_RE}, ${NUL_STANDIN}, 'g') else metadata end)::json`;
  const k = key.replaceAll('\0', '\uffff');
  // `->>` gives null for a JSON null, which String() spells "null".
  return sql<boolean>`case json_typeof(${doc} -> ${k}::text) when 'null' then 'null' when 'array' then null when 'object' then null else ${doc} ->> ${k}::text end = ${want.replaceAll('\0', '\uffff')}`;
}

/** Assets matching every filter, in id order: one query per page, whatever the filters. */
export async function listAssets(db: Db, q: AssetQuery): Promise<Asset[]> {
  const caps = capsOf(db);
  let query = db.selectFrom('assets').selectAll().orderBy('id').limit(Math.min(q.limit ?? 100, 1000));
  if (q.repoIds) query = q.repoIds.length ? query.where('repo_id', 'in', q.repoIds) : query.where(sql<boolean>`1 = 0`);
  if (q.prefix) query = query.where(sql<boolean>`path like ${likePrefix(q.prefix)} escape '\\'`);
  if (q.digest) query = query.where('digest', '=', q.digest);
  if (q.afterId) query = query.where('id', '>', q.afterId);
  for (const [k, v] of Object.entries(q.metadata ?? {})) query = query.where(metadataEquals(caps, k, String(v)));
  return (await query.execute()).map(toAsset);
}

export async function countAssetsByDigest(db: Db, digest: string): Promise<number> {
  const r = await db
    .selectFrom('assets')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('digest', '=', digest)
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}

/** Every digest some asset references: the GC's live set. */
export async function* referencedDigests(db: Db): AsyncIterable<string> {
  let after = '';
  for (;;) {
    const rows = await db
      .selectFrom('assets')
      .select('digest')
      .distinct()
      .where('digest', '>', after)
      .orderBy('digest')
      .limit(1000)
      .execute();
    if (rows.length === 0) return;
    for (const r of rows) yield r.digest;
    after = rows[rows.length - 1].digest;
  }
}

/**
 * Records reads of cached proxy assets (src/repos/proxy/access.ts batches them): one UPDATE per asset, no event —
 * a read is not a change replicas follow. Never moves accessed_at backwards (another node may have written later).
 */
export async function touchAssets(tx: Tx, reads: { repoId: number; path: string; at: string }[]): Promise<void> {
  for (const r of reads) {
    await tx
      .updateTable('assets')
      .set({ accessed_at: r.at })
      .where('repo_id', '=', r.repoId)
      .where('path', '=', r.path)
      .where((eb) => eb.or([eb('accessed_at', 'is', null), eb('accessed_at', '<', r.at)]))
      .execute();
  }
}

/**
 * Assets of a repository neither read nor written since `before` (ISO time): proxy retention's candidates,
 * in id order after `afterId`. A never-read asset counts from its updated_at (≥ created_at).
 */
export async function unusedAssets(db: Db, repoId: number, before: string, opts: { afterId?: number; limit?: number } = {}): Promise<{ id: number; path: string }[]> {
  const rows = await db
    .selectFrom('assets')
    .select(['id', 'path'])
    .where('repo_id', '=', repoId)
    .where('id', '>', opts.afterId ?? 0)
    .where('updated_at', '<', before)
    .where((eb) => eb.or([eb('accessed_at', 'is', null), eb('accessed_at', '<', before)]))
    .orderBy('id')
    .limit(opts.limit ?? 500)
    .execute();
  return rows.map((r) => ({ id: Number(r.id), path: r.path }));
}
