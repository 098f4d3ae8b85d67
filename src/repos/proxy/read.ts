/**
 * Reading one object through a proxy repository — the whole cache policy, format-neutral:
 *   immutable: cached → hit; else the same bytes under another path bound after a HEAD, else one upstream GET
 *              (single-flight) streamed to every waiting client while it is spooled; verified, the spool becomes
 *              the blob (fs store) or is copied into it (s3), then bound as an asset at `path` (immutable.ts).
 *   mutable:   cached and younger than the TTL → hit; else revalidated (If-None-Match / If-Modified-Since,
 *              single-flighted); a new version is stored in full, then served from the cache.
 *   404:       remembered for the negative TTL.
 *   upstream down (or refusing the proxy's credentials): a cached copy (mutable past its TTL included) is served
 *              with `stale: true`; else the error.
 * Requests, results and the per-path cache state live in request.ts (re-exported here).
 */
import { Readable } from 'node:stream';
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { getAsset, type Asset } from '../../meta/assets.ts';
import { storeAsset } from '../content.ts';
import { runtimeOf, type ProxyRuntime } from './runtime.ts';
import { UpstreamError } from './upstream.ts';
import { fetchImmutable, reuseSameDigest } from './immutable.ts';
import { keyOf, markFresh, markMissing, proxyMeta, sizeOf, upstreamUnavailable, upstreamUrl, type ProxyRequest, type ProxyResult } from './request.ts';

export * from './request.ts';

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

function isFresh(rt: ProxyRuntime, repo: RepositoryRecord, key: string, a: Asset): boolean {
  const ttl = rt.client(repo).opts.metadataTtlMs;
  const at = rt.fresh.get(key) ?? Date.parse(((a.metadata.proxy as { fetchedAt?: string } | undefined)?.fetchedAt ?? a.updatedAt));
  return Date.now() - at < ttl;
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

