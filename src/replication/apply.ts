/**
 * Reproduces the primary's changes on a replica, inside the caller's transaction, through the same meta/
 * functions the primary used — so the replica's own event log, caches and GC see ordinary changes. Every step
 * is idempotent (a repository that exists is updated, a tag already there is left alone), which lets a replica
 * re-read a feed from the start after a promotion elsewhere changed the epoch.
 */
import type { Tx } from '../meta/db.ts';
import { deleteAsset, putAsset } from '../meta/assets.ts';
import { deleteRepository, getRepository, insertRepository, updateRepository, type RepositoryConfig } from '../meta/repos.ts';
import { deleteTag, setTag } from '../meta/tags.ts';
import { deleteTrustedKey, putTrustedKey } from '../meta/trusted-keys.ts';
import type { RepoKind } from '../meta/tables.ts';
import type { FeedEvent } from './feed-format.ts';

/** The event could not be reproduced: the page is refused as a whole. */
export class ApplyError extends Error {}

const str = (v: unknown, what: string): string => {
  if (typeof v !== 'string') throw new ApplyError(`event field ${what} is missing or not a string`);
  return v;
};

export async function applyEvent(tx: Tx, e: FeedEvent): Promise<void> {
  const name = str(e.repo, `repo (seq ${e.seq})`);
  const d = e.data ?? {};
  if (e.kind === 'repository.created') {
    const input = {
      format: str(d.format, 'data.format'),
      kind: str(d.kind, 'data.kind') as RepoKind,
      anonymousRead: d.anonymousRead === true,
      config: (d.config ?? {}) as RepositoryConfig,
    };
    if (await getRepository(tx, name)) await updateRepository(tx, name, { anonymousRead: input.anonymousRead, config: input.config }, e.actor);
    else await insertRepository(tx, { name, ...input }, e.actor);
    return;
  }
  if (e.kind === 'repository.deleted') {
    await deleteRepository(tx, name, e.actor);
    return;
  }
  const repo = await getRepository(tx, name);
  if (e.kind === 'repository.updated') {
    if (!repo) throw new ApplyError(`repository ${name} updated before it was created (seq ${e.seq})`);
    await updateRepository(tx, name, d as { anonymousRead?: boolean; config?: RepositoryConfig }, e.actor);
    return;
  }
  if (!repo) throw new ApplyError(`event ${e.kind} for unknown repository ${name} (seq ${e.seq})`);
  const ref = { id: repo.id, name: repo.name };
  switch (e.kind) {
    case 'asset.put':
      await putAsset(
        tx,
        {
          repoId: repo.id,
          repo: repo.name,
          path: str(e.path, 'path'),
          digest: str(e.digest, 'digest'),
          size: Number(d.size),
          mediaType: typeof d.mediaType === 'string' ? d.mediaType : null,
          metadata: (d.metadata ?? {}) as Record<string, unknown>,
        },
        e.actor,
      );
      return;
    case 'asset.deleted':
      await deleteAsset(tx, ref, str(e.path, 'path'), e.actor);
      return;
    case 'tag.set':
      await setTag(tx, ref, str(d.scope, 'data.scope'), str(d.tag, 'data.tag'), str(d.target, 'data.target'), e.actor);
      return;
    case 'tag.deleted':
      await deleteTag(tx, ref, str(d.scope, 'data.scope'), str(d.tag, 'data.tag'), e.actor);
      return;
    case 'trust.key.put':
      await putTrustedKey(
        tx,
        ref,
        { id: str(d.key, 'data.key'), algorithm: str(d.algorithm, 'data.algorithm'), fingerprint: str(d.fingerprint, 'data.fingerprint'), publicKey: str(d.publicKey, 'data.publicKey') },
        e.actor,
      );
      return;
    case 'trust.key.deleted':
      await deleteTrustedKey(tx, ref, str(d.key, 'data.key'), e.actor);
      return;
    default:
      throw new ApplyError(`event kind ${e.kind} cannot be replicated by this version (seq ${e.seq})`);
  }
}

/**
 * The blobs a page needs before its metadata may become visible: digest and size of every asset it leaves bound.
 * An asset replaced or deleted later in the same page is skipped — the primary may already have collected its blob.
 */
export function blobsNeeded(events: readonly FeedEvent[]): Map<string, number> {
  const bound = new Map<string, { digest: string; size: number }>();
  for (const e of events) {
    const key = `${e.repo}\0${e.path}`;
    if (e.kind === 'asset.put' && e.digest) bound.set(key, { digest: e.digest, size: Number(e.data?.size) });
    else if (e.kind === 'asset.deleted') bound.delete(key);
    else if (e.kind === 'repository.deleted') for (const k of [...bound.keys()]) if (k.startsWith(`${e.repo}\0`)) bound.delete(k);
  }
  return new Map([...bound.values()].map((b) => [b.digest, b.size]));
}
