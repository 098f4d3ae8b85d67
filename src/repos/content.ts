/**
 * Reading and writing assets through the repository model: hosted repositories store, groups resolve reads
 * across their members in order (only members the caller may read) and send writes to their writeMember.
 * Proxy repositories keep what they fetched as ordinary assets here; fetching them is repos/proxy/ (readThrough
 * walks the same readOrder and asks proxy members their upstream).
 */
import type { Readable } from 'node:stream';
import type { Services } from '../server/services.ts';
import type { RepositoryRecord } from '../meta/repos.ts';
import type { Principal } from '../auth/types.ts';
import { withTx } from '../meta/db.ts';
import { AssetExistsError, deleteAsset, getAsset, listAssets, putAsset, type Asset } from '../meta/assets.ts';
import { GranaryError } from '../server/errors.ts';

export interface FoundAsset {
  asset: Asset;
  /** The hosted repository that holds it (differs from the one asked for when that is a group). */
  from: RepositoryRecord;
}

/**
 * The repositories that may answer a read of `repo`, in order: itself when hosted; for a group, its members
 * depth-first, skipping members the principal may not read and any repeated along the way.
 */
/**
 * The principal as its roles see it. A scoped credential (a registry JWT's `restrict`) names the repository the
 * request addressed — a group, checked against the token by the auth hook and the format — never the members
 * behind it; members are checked against the roles alone, so nobody reads or writes a member they may not.
 */
export function byRoles(p: Principal): Principal {
  if (p.kind !== 'user' || p.restrict === undefined) return p;
  const { restrict: _scoped, ...roles } = p;
  return roles;
}

export async function readOrder(s: Services, repo: RepositoryRecord, principal: Principal): Promise<RepositoryRecord[]> {
  const p = byRoles(principal);
  const out: RepositoryRecord[] = [];
  const seen = new Set<string>();
  const walk = async (r: RepositoryRecord) => {
    if (seen.has(r.name)) return;
    seen.add(r.name);
    if (r.kind !== 'group') {
      out.push(r);
      return;
    }
    for (const name of r.config.members ?? []) {
      const m = await s.repos.get(name);
      if (m && (await s.auth.can(p, 'read', m))) await walk(m);
    }
  };
  await walk(repo);
  return out;
}

/**
 * Every asset under a path prefix visible through `repo`: for a group, its readable members in order, the first
 * asset per digest winning. Pages through the table; for listings (memflow plug-ins, eBPF artifacts).
 */
export async function assetsUnder(s: Services, repo: RepositoryRecord, p: Principal, prefix: string): Promise<Asset[]> {
  const out: Asset[] = [];
  const seen = new Set<string>();
  for (const r of await readOrder(s, repo, p)) {
    let afterId = 0;
    for (;;) {
      const page = await listAssets(s.meta.db, { repoIds: [r.id], prefix, afterId, limit: 1000 });
      for (const a of page) {
        if (seen.has(a.digest)) continue;
        seen.add(a.digest);
        out.push(a);
      }
      if (page.length < 1000) break;
      afterId = page[page.length - 1].id;
    }
  }
  return out;
}

export async function findAsset(s: Services, repo: RepositoryRecord, path: string, p: Principal): Promise<FoundAsset | null> {
  for (const r of await readOrder(s, repo, p)) {
    const asset = await getAsset(s.meta.db, r.id, path);
    if (asset) return { asset, from: r };
  }
  return null;
}

/** The hosted repository that receives writes addressed to `repo` (itself, or a group's writeMember). */
export async function writeTarget(s: Services, repo: RepositoryRecord, p: Principal): Promise<RepositoryRecord> {
  if (repo.kind === 'hosted') return repo;
  if (repo.kind === 'group' && repo.config.writeMember) {
    const w = await s.repos.get(repo.config.writeMember);
    if (!w) throw new GranaryError('INTERNAL', `group ${repo.name} names a missing writeMember`);
    await s.auth.require(byRoles(p), 'write', w);
    return w;
  }
  throw new GranaryError(
    'METHOD_NOT_ALLOWED',
    repo.kind === 'group'
      ? `group ${repo.name} has no writeMember; push to one of its hosted members`
      : `${repo.kind} repository ${repo.name} is read-only`,
  );
}

export interface StoreOptions {
  path: string;
  data: Readable;
  mediaType?: string | null;
  metadata?: Record<string, unknown>;
  expectedDigest?: string;
  expectedSize?: number;
  signal?: AbortSignal;
  /** Upload cap in bytes; the server-wide `limits.uploadBytes` when unset (never above it). */
  maxBytes?: number;
  /**
   * Only create: when the path is taken (or a concurrent upload takes it first) storeAsset throws CONFLICT and
   * binds nothing — for immutable versions, so two racing uploads of one release cannot both succeed.
   */
  ifAbsent?: boolean;
  /**
   * Further assets bound in the same transaction as this one, after `enrich` ran (their blobs already stored):
   * files derived from an upload (a Go module's `.mod` and `.info` from its zip) appear together with it or not
   * at all, and lose together with it when `ifAbsent` finds the path taken.
   */
  siblings?: () => { path: string; digest: string; size: number; mediaType?: string | null; metadata?: Record<string, unknown> }[];
  /**
   * Runs after the bytes are stored and verified, before the asset is bound: returns metadata to merge over
   * `metadata` (e.g. what introspection found), or throws to refuse the upload (the blob stays unreferenced).
   */
  enrich?: (blob: { digest: string; size: number }) => Promise<Record<string, unknown>>;
}

/**
 * Streams the bytes into the blob store (verified), then binds the path to the blob and appends the event,
 * in one transaction. The asset is visible only once both are done.
 */
export async function storeAsset(s: Services, repo: RepositoryRecord, o: StoreOptions, actor: string | null): Promise<{ asset: Asset; previous: Asset | null }> {
  const blob = await s.blobs.put(o.data, {
    expectedDigest: o.expectedDigest,
    expectedSize: o.expectedSize,
    maxBytes: Math.min(o.maxBytes ?? Infinity, s.config.limits.uploadBytes),
    signal: o.signal,
  });
  const metadata = o.enrich ? { ...o.metadata, ...(await o.enrich(blob)) } : (o.metadata ?? {});
  try {
    return await withTx(s.meta.db, async (tx) => {
      const bound = await putAsset(
        tx,
        {
          repoId: repo.id,
          repo: repo.name,
          path: o.path,
          digest: blob.digest,
          size: blob.size,
          mediaType: o.mediaType ?? null,
          metadata,
          ifAbsent: o.ifAbsent,
        },
        actor,
      );
      for (const sib of o.siblings?.() ?? []) {
        await putAsset(tx, { repoId: repo.id, repo: repo.name, path: sib.path, digest: sib.digest, size: sib.size, mediaType: sib.mediaType ?? null, metadata: sib.metadata }, actor);
      }
      return bound;
    });
  } catch (e) {
    if (e instanceof AssetExistsError) throw new GranaryError('CONFLICT', `${repo.name}/${o.path} already exists and cannot be replaced`);
    throw e;
  }
}

export async function removeAsset(s: Services, repo: RepositoryRecord, path: string, actor: string | null): Promise<Asset | null> {
  if (repo.kind !== 'hosted') throw new GranaryError('METHOD_NOT_ALLOWED', `cannot delete from ${repo.kind} repository ${repo.name}`);
  return withTx(s.meta.db, (tx) => deleteAsset(tx, repo, path, actor));
}
