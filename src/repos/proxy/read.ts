/**
 * Reading one object through a proxy repository — the whole cache policy, format-neutral:
 *   immutable: cached → hit; else one upstream GET (single-flight) streamed to every waiting client while it is
 *              spooled; verified, the spool becomes the blob (fs store) or is copied into it (s3), then bound as an
 *              asset at `path`.
 *   mutable:   cached and younger than the TTL → hit; else revalidated (If-None-Match / If-Modified-Since,
 *              single-flighted); a new version is stored in full, then served from the cache.
 *   404:       remembered for the negative TTL.
 *   upstream down: a cached copy (mutable past its TTL included) is served with `stale: true`; else the error.
 */
import { rm } from 'node:fs/promises';
import { Readable, type Writable } from 'node:stream';
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { getAsset, listAssets, putAsset, type Asset } from '../../meta/assets.ts';
import { withTx } from '../../meta/db.ts';
import { storeAsset } from '../content.ts';
import { remember, runtimeOf, type ProxyRuntime } from './runtime.ts';
import { UpstreamError, type UpstreamResponse } from './upstream.ts';
import type { Flight, SpoolResult } from './flight.ts';
import { parseDigest } from '../../blobs/digest.ts';
import { DigestMismatchError, SizeMismatchError } from '../../blobs/errors.ts';

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

const keyOf = (repo: RepositoryRecord, path: string) => `${repo.id}:${path}`;

function sizeOf(h: Record<string, string>): number | undefined {
  const n = Number(h['content-length']);
  return h['content-length'] !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function proxyMeta(res: UpstreamResponse, extra?: Record<string, unknown>): Record<string, unknown> {
  const m: Record<string, unknown> = { fetchedAt: new Date().toISOString(), url: res.url };
  if (res.headers.etag) m.etag = res.headers.etag;
  if (res.headers['last-modified']) m.lastModified = res.headers['last-modified'];
  return { ...extra, proxy: m };
}

export async function proxyRead(s: Services, repo: RepositoryRecord, r: ProxyRequest): Promise<ProxyResult> {
  const rt = runtimeOf(s);
  const label = { repository: repo.name };
  const key = keyOf(repo, r.path);
  const cached = await getAsset(s.meta.db, repo.id, r.path);
  if (cached && r.mutability === 'immutable') {
    rt.metrics.hits.inc(label);
    return { kind: 'cached', asset: cached, repo, stale: false };
  }
  if (cached && isFresh(rt, repo, key, cached)) {
    rt.metrics.hits.inc(label);
    return { kind: 'cached', asset: cached, repo, stale: false };
  }
  const neg = rt.negative.get(key);
  if (neg !== undefined && neg > Date.now()) {
    rt.metrics.hits.inc(label);
    return { kind: 'not-found' };
  }
  if (r.mutability === 'immutable' && r.expectedDigest !== undefined) {
    const reused = await reuseSameDigest(s, rt, repo, r);
    if (reused !== null) {
      rt.metrics.hits.inc(label);
      return reused;
    }
  }
  rt.metrics.misses.inc(label);
  try {
    if (r.mutability === 'mutable') return await revalidate(s, rt, repo, r, key, cached);
    if (r.head) return await headOnly(s, rt, repo, r);
    return await fetchImmutable(s, rt, repo, r, key);
  } catch (e) {
    if (cached && upstreamUnavailable(e)) {
      rt.metrics.staleServed.inc(label);
      s.log.warn({ repository: repo.name, path: r.path, err: (e as Error).message }, 'upstream failed: serving the cached copy past its TTL');
      return { kind: 'cached', asset: cached, repo, stale: true };
    }
    throw e;
  }
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

/**
 * The same bytes cached under another path of this repository — a base layer shared by two images of one
 * mirror — are bound at `path` too once a HEAD confirms the upstream has them there: no second download (and a
 * HEAD does not count toward Docker Hub's pull limit). When the upstream cannot answer, they are bound anyway:
 * the digest vouches for the bytes, and a mirror keeps serving while its upstream is down. Only within one
 * repository, so nobody reads through a proxy what another repository holds.
 */
async function reuseSameDigest(s: Services, rt: ProxyRuntime, repo: RepositoryRecord, r: ProxyRequest): Promise<ProxyResult | null> {
  const [twin] = await listAssets(s.meta.db, { repoIds: [repo.id], digest: r.expectedDigest, limit: 1 });
  if (twin === undefined || (await s.blobs.stat(twin.digest)) === null) return null;
  const url = r.url ?? upstreamUrl(repo, r.path);
  let confirmed: UpstreamResponse | null = null;
  try {
    confirmed = await rt.client(repo).request(url, { method: 'HEAD', headers: r.headers, scope: r.scope });
  } catch (e) {
    if (!upstreamUnavailable(e)) throw e;
    s.log.warn({ repository: repo.name, path: r.path, err: (e as Error).message }, 'upstream failed: binding the copy cached under another path');
  }
  if (confirmed !== null) {
    if (confirmed.status === 404 || confirmed.status === 410) {
      markMissing(s, repo, r.path);
      return { kind: 'not-found' };
    }
    const size = sizeOf(confirmed.headers);
    if (confirmed.status !== 200 || (size !== undefined && size !== twin.size)) return null; // let a GET sort it out
  }
  const metadata = { ...r.metadata, proxy: { fetchedAt: new Date().toISOString(), url, sameAs: twin.path } };
  const mediaType = confirmed?.headers['content-type'] ?? twin.mediaType ?? r.mediaType;
  const asset = await bindCached(s, repo, r.path, { digest: twin.digest, size: twin.size, mediaType, metadata });
  return { kind: 'cached', asset, repo, stale: false };
}

function isFresh(rt: ProxyRuntime, repo: RepositoryRecord, key: string, a: Asset): boolean {
  const ttl = rt.client(repo).opts.metadataTtlMs;
  const at = rt.fresh.get(key) ?? Date.parse(((a.metadata.proxy as { fetchedAt?: string } | undefined)?.fetchedAt ?? a.updatedAt));
  return Date.now() - at < ttl;
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

async function revalidate(s: Services, rt: ProxyRuntime, repo: RepositoryRecord, r: ProxyRequest, key: string, cached: Asset | null): Promise<ProxyResult> {
  const running = rt.revalidating.get(key);
  if (running) return (await running) as ProxyResult;
  const p = (async (): Promise<ProxyResult> => {
    const headers: Record<string, string> = { ...r.headers };
    const pm = cached?.metadata.proxy as { etag?: string; lastModified?: string } | undefined;
    if (pm?.etag) headers['if-none-match'] = pm.etag;
    else if (pm?.lastModified) headers['if-modified-since'] = pm.lastModified;
    const client = rt.client(repo);
    const res = await client.request(r.url ?? upstreamUrl(repo, r.path), { headers, scope: r.scope });
    if (res.status === 304 && cached) {
      markFresh(s, repo, r.path);
      return { kind: 'cached', asset: cached, repo, stale: false };
    }
    if (res.status === 404 || res.status === 410) {
      markMissing(s, repo, r.path);
      return { kind: 'not-found' };
    }
    if (res.status !== 200 || !res.body) throw new UpstreamError(`upstream ${new URL(res.url).origin} answered HTTP ${res.status} for ${new URL(res.url).pathname}`, res.status);
    const body = counted(res.body, rt, repo);
    const { asset } = await storeAsset(
      s,
      repo,
      {
        path: r.path,
        data: body,
        mediaType: res.headers['content-type'] ?? r.mediaType ?? null,
        metadata: proxyMeta(res, r.metadata),
        expectedDigest: r.expectedDigest,
        expectedSize: sizeOf(res.headers),
      },
      null,
    );
    markFresh(s, repo, r.path);
    rt.negative.delete(key);
    return { kind: 'cached', asset, repo, stale: false };
  })();
  rt.revalidating.set(key, p);
  try {
    return await p;
  } finally {
    rt.revalidating.delete(key);
  }
}

async function headOnly(s: Services, rt: ProxyRuntime, repo: RepositoryRecord, r: ProxyRequest): Promise<ProxyResult> {
  const res = await rt.client(repo).request(r.url ?? upstreamUrl(repo, r.path), { method: 'HEAD', headers: r.headers, scope: r.scope });
  if (res.status === 404 || res.status === 410) {
    markMissing(s, repo, r.path);
    return { kind: 'not-found' };
  }
  if (res.status !== 200) throw new UpstreamError(`upstream ${new URL(res.url).origin} answered HTTP ${res.status} to HEAD ${new URL(res.url).pathname}`, res.status);
  return { kind: 'live', repo, body: null, size: sizeOf(res.headers), digest: r.expectedDigest ?? res.headers['docker-content-digest'], mediaType: res.headers['content-type'] ?? r.mediaType };
}

/** The body, counted into the bytes-fetched metric as it is read (a 'data' listener would start it flowing early). */
function counted(body: Readable, rt: ProxyRuntime, repo: RepositoryRecord): Readable {
  const label = { repository: repo.name };
  return Readable.from(
    (async function* () {
      for await (const c of body) {
        rt.metrics.bytesFetched.inc(label, (c as Buffer).length);
        yield c as Buffer;
      }
    })(),
    { objectMode: false },
  );
}

interface FlightInfo {
  found: boolean;
  size?: number;
  mediaType?: string;
  digest?: string;
}

const infos = new WeakMap<Flight, Promise<FlightInfo>>();

async function fetchImmutable(s: Services, rt: ProxyRuntime, repo: RepositoryRecord, r: ProxyRequest, key: string): Promise<ProxyResult> {
  let flight = rt.flights.get(key);
  if (!flight) {
    flight = rt.flights.start(key);
    infos.set(flight, runFlight(s, rt, repo, r, key, flight));
  }
  const info = await infos.get(flight)!;
  if (!info.found) return { kind: 'not-found' };
  if (r.wait) {
    await flight.over;
    if (flight.error) throw flight.error;
    const asset = await getAsset(s.meta.db, repo.id, r.path);
    if (!asset) throw new UpstreamError(`the cached copy of ${r.path} vanished`, null);
    return { kind: 'cached', asset, repo, stale: false };
  }
  if (flight.error) throw flight.error;
  const size = info.size;
  return {
    kind: 'live',
    repo,
    body: flight.reader(true),
    size,
    digest: info.digest,
    mediaType: info.mediaType,
    ...(size === undefined ? {} : { copyTo: (dest: Writable) => flight.copyTo(dest, size) }),
  };
}

/** Starts the upstream GET; resolves once headers are in (or not found), then keeps spooling and storing. */
async function runFlight(s: Services, rt: ProxyRuntime, repo: RepositoryRecord, r: ProxyRequest, key: string, flight: Flight): Promise<FlightInfo> {
  let res: UpstreamResponse;
  try {
    res = await rt.client(repo).request(r.url ?? upstreamUrl(repo, r.path), { headers: r.headers, scope: r.scope });
  } catch (e) {
    flight.fail(e as Error);
    throw e;
  }
  if (res.status === 404 || res.status === 410) {
    markMissing(s, repo, r.path);
    flight.fail(new Error('not found'));
    return { found: false };
  }
  if (res.status !== 200 || !res.body) {
    const e = new UpstreamError(`upstream ${new URL(res.url).origin} answered HTTP ${res.status} for ${new URL(res.url).pathname}`, res.status);
    flight.fail(e);
    throw e;
  }
  const size = sizeOf(res.headers);
  const mediaType = res.headers['content-type'] ?? r.mediaType;
  const body = res.body;
  const onBytes = (n: number) => rt.metrics.bytesFetched.inc({ repository: repo.name }, n);
  const maxBytes = s.config.limits.uploadBytes;
  // The cache is filled on its own schedule: a client going away does not stop it (Distribution does the same).
  let spooled: Promise<SpoolResult>;
  let stored: Promise<unknown>;
  const asset = { mediaType: mediaType ?? null, metadata: proxyMeta(res, r.metadata) };
  if (s.blobs.adoptFile !== undefined) {
    // A store with local files takes the spool itself (hashed while written, fsynced): one write to disk instead
    // of two, and no second read of the bytes.
    const algorithm = r.expectedDigest === undefined ? 'sha256' : parseDigest(r.expectedDigest).algorithm;
    spooled = flight.spool(body, { onBytes, hash: algorithm, maxBytes });
    stored = spooled.then(async (sp) => {
      checkSpooled(sp, r.expectedDigest, size);
      const name = await flight.handOver();
      const blob = await s.blobs.adoptFile!(name, { digest: sp.digest!, size: sp.size }).finally(() => rm(name, { force: true }));
      return bindCached(s, repo, r.path, { ...blob, ...asset });
    });
  } else {
    spooled = flight.spool(body, { onBytes });
    stored = storeAsset(
      s,
      repo,
      { path: r.path, data: flight.reader(false), ...asset, expectedDigest: r.expectedDigest, expectedSize: size, maxBytes },
      null,
    );
  }
  void Promise.all([spooled, stored]).then(
    () => {
      rt.negative.delete(key);
      flight.commit();
    },
    (e: Error) => {
      body.destroy();
      void spooled.catch(() => {});
      rt.metrics.upstreamErrors.inc({ repository: repo.name });
      s.log.warn({ repository: repo.name, path: r.path, err: e.message }, 'proxy download failed; nothing was cached');
      flight.fail(e instanceof UpstreamError ? e : new UpstreamError(`download of ${r.path} from the upstream failed: ${e.message}`, null, e));
    },
  );
  return { found: true, size, mediaType, digest: r.expectedDigest };
}

/** The spooled bytes against what the request and the upstream promised (as `BlobStore.put` checks them). */
function checkSpooled(sp: SpoolResult, expectedDigest: string | undefined, expectedSize: number | undefined): void {
  if (expectedSize !== undefined && sp.size !== expectedSize) throw new SizeMismatchError(expectedSize, sp.size);
  if (expectedDigest !== undefined && sp.digest !== expectedDigest) throw new DigestMismatchError(expectedDigest, sp.digest!);
}

/** Binds an already-stored blob at a path of a proxy repository (formats caching derived objects). */
export async function bindCached(s: Services, repo: RepositoryRecord, path: string, blob: { digest: string; size: number; mediaType?: string | null; metadata?: Record<string, unknown> }): Promise<Asset> {
  return withTx(s.meta.db, async (tx) =>
    (await putAsset(tx, { repoId: repo.id, repo: repo.name, path, digest: blob.digest, size: blob.size, mediaType: blob.mediaType ?? null, metadata: blob.metadata ?? {} }, null)).asset,
  );
}
