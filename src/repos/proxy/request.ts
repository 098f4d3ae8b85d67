/**
 * What a format asks a proxy for (ProxyRequest), what it gets back (ProxyResult), and the per-path cache state the
 * read paths share: freshness and the negative cache (in runtime.ts, per server), upstream URLs, the metadata a
 * cached copy carries, and binding a stored blob at a path.
 */
import type { Writable, Readable } from 'node:stream';
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { putAsset, type Asset } from '../../meta/assets.ts';
import { withTx } from '../../meta/db.ts';
import { remember, runtimeOf } from './runtime.ts';
import { UpstreamError, type UpstreamResponse } from './upstream.ts';

export type Mutability = 'immutable' | 'mutable';

export interface ProxyRequest {
  /** Where the object is cached in the proxy repository (an asset path, e.g. `com/x/1.0/x-1.0.jar`). */
  path: string;
  /** immutable: cached forever once fetched. mutable: cached for the repository's metadata TTL, then revalidated. */
  mutability: Mutability;
  /** Upstream URL; default `<upstream>/<path>` (see upstreamUrl). */
  url?: string;
  /** Extra upstream request headers (e.g. Accept). */
  headers?: Record<string, string>;
  /** Token scope for a Docker token realm (OCI: `repository:<name>:pull`). */
  scope?: string;
  /** Digest the bytes must have; verified before the cached copy becomes visible (a mismatch caches nothing). */
  expectedDigest?: string;
  /** Media type to record when the upstream sends no Content-Type. */
  mediaType?: string;
  /** Extra metadata stored on the cached asset. */
  metadata?: Record<string, unknown>;
  /** Only existence, size and type are wanted: an uncached object is asked for with HEAD and not fetched. */
  head?: boolean;
  /** Immutable objects: wait until stored and answer `cached` instead of a live stream (small objects). */
  wait?: boolean;
}

export type ProxyResult =
  /** Serve `asset` from the blob store (sendProxyResult does ranges, ETag, the stale Warning). */
  | { kind: 'cached'; asset: Asset; repo: RepositoryRecord; stale: boolean }
  /** Bytes arriving from the upstream now (no body for `head`); the cache is being filled behind it. */
  | {
      kind: 'live';
      repo: RepositoryRecord;
      body: Readable | null;
      size?: number;
      digest?: string;
      mediaType?: string;
      /** Instead of `body` (destroy it then): the same bytes written straight into a response, without a stream. */
      copyTo?: (dest: Writable) => Promise<void>;
    }
  | { kind: 'not-found' };

/** `<upstream>/<path>`, one slash between, path segments kept as given (they are already URL-safe). */
export function upstreamUrl(repo: RepositoryRecord, path: string): string {
  return `${(repo.config.upstream ?? '').replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

export const keyOf = (repo: RepositoryRecord, path: string) => `${repo.id}:${path}`;

export function sizeOf(h: Record<string, string>): number | undefined {
  const n = Number(h['content-length']);
  return h['content-length'] !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

export function proxyMeta(res: UpstreamResponse, extra?: Record<string, unknown>): Record<string, unknown> {
  const m: Record<string, unknown> = { fetchedAt: new Date().toISOString(), url: res.url };
  if (res.headers.etag) m.etag = res.headers.etag;
  if (res.headers['last-modified']) m.lastModified = res.headers['last-modified'];
  return { ...extra, proxy: m };
}

/**
 * Whether a failed upstream request leaves a cached copy the best answer: the upstream is down, timing out, 5xx or
 * 429 — or it refuses the proxy's own credentials (401/403: credentials that expired or were rotated upstream are
 * the operator's to fix, no reason for a mirror to stop serving what it holds; the failure is logged and counted).
 * An answer about the object itself (400, 404…) is obeyed.
 */
export function upstreamUnavailable(e: unknown): boolean {
  if (!(e instanceof UpstreamError) || e.upstreamStatus === null) return true;
  const st = e.upstreamStatus;
  return st >= 500 || st === 429 || st === 401 || st === 403;
}

/** Marks a mutable object as just confirmed by the upstream (also used by formats with their own checks). */
export function markFresh(s: Services, repo: RepositoryRecord, path: string): void {
  remember(runtimeOf(s).fresh, keyOf(repo, path), Date.now());
}

/**
 * Whether a mutable object was confirmed by the upstream within the repository's metadata TTL: in memory, else
 * `since` (e.g. when the format's own record last changed; a restart revalidates once).
 */
export function isFreshPath(s: Services, repo: RepositoryRecord, path: string, since?: string): boolean {
  const rt = runtimeOf(s);
  const at = rt.fresh.get(keyOf(repo, path)) ?? (since ? Date.parse(since) : 0);
  return Date.now() - at < rt.client(repo).opts.metadataTtlMs;
}

/** Whether the upstream answered "not found" for `path` within the negative TTL. */
export function knownMissing(s: Services, repo: RepositoryRecord, path: string): boolean {
  const until = runtimeOf(s).negative.get(keyOf(repo, path));
  return until !== undefined && until > Date.now();
}

/** Remembers that the upstream does not have `path` (negative cache). */
export function markMissing(s: Services, repo: RepositoryRecord, path: string): void {
  const rt = runtimeOf(s);
  remember(rt.negative, keyOf(repo, path), Date.now() + rt.client(repo).opts.negativeTtlMs);
}

/** Binds an already-stored blob at a path of a proxy repository (formats caching derived objects). */
export async function bindCached(s: Services, repo: RepositoryRecord, path: string, blob: { digest: string; size: number; mediaType?: string | null; metadata?: Record<string, unknown> }): Promise<Asset> {
  return withTx(s.meta.db, async (tx) =>
    (await putAsset(tx, { repoId: repo.id, repo: repo.name, path, digest: blob.digest, size: blob.size, mediaType: blob.mediaType ?? null, metadata: blob.metadata ?? {} }, null)).asset,
  );
}

