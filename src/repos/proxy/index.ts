/**
 * The proxy (pull-through cache) and group machinery every format uses — see docs/proxy.md for how a format
 * plugs in. A format says, per request, where the object is cached (an asset path), whether it is immutable
 * or mutable metadata, and (when not `<upstream>/<path>`) its upstream URL; everything else — upstream
 * auth, retries, single-flight, TTL and revalidation, negative cache, serve-stale, metrics — happens here.
 *
 *   readThrough(s, repo, principal, request | plan)  hosted, proxy or group repository → ProxyResult
 *   proxyRead(s, proxyRepo, request)                 one proxy repository
 *   sendProxyResult(req, reply, s, result, opts)     serve it (ranges/ETag via send-blob for cached assets)
 *   upstreamFetch(s, proxyRepo, url, init)           a raw upstream request with the repository's auth (HEAD, lists)
 *   writeTarget / readOrder                          groups: where writes go, who answers reads
 *   noteAccess / flushAccess / sweepRetention        last-read tracking and `unusedDays` retention
 */
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { runtimeOf } from './runtime.ts';
import type { UpstreamInit, UpstreamResponse } from './upstream.ts';

export { readThrough, type ReadPlan } from './group.ts';
export { proxyRead, upstreamUrl, upstreamUnavailable, markFresh, markMissing, isFreshPath, knownMissing, bindCached, type Mutability, type ProxyRequest, type ProxyResult } from './read.ts';
export { sendProxyResult, STALE_WARNING, type SendOptions } from './send.ts';
export { UpstreamError, type UpstreamInit, type UpstreamResponse } from './upstream.ts';
export { PROXY_OPTIONS_KEY, ProxyOptionsSchema, proxyOptionsOf, isDockerHub, redactProxySecrets, keepRedactedSecrets, type ProxyOptions, type UpstreamAuth } from './options.ts';
export { readOrder, writeTarget } from '../content.ts';
export { noteAccess, flushAccess } from './access.ts';
export { sweepRetention, type SweepResult } from './retention.ts';

/**
 * One request to the repository's upstream with its auth, TLS, timeouts and retries. The body (when status 200
 * and not HEAD) must be consumed or destroyed by the caller. Errors: UpstreamError (UPSTREAM_FAILED, 502).
 */
export function upstreamFetch(s: Services, repo: RepositoryRecord, url: string, init?: UpstreamInit): Promise<UpstreamResponse> {
  return runtimeOf(s).client(repo).request(url, init);
}

/**
 * Counts a cache hit a format answered itself (e.g. OCI's tag within its TTL), so the metrics stay whole;
 * `stale`: served past its TTL because the upstream failed.
 */
export function countCacheHit(s: Services, repo: RepositoryRecord, stale = false): void {
  const m = runtimeOf(s).metrics;
  m.hits.inc({ repository: repo.name });
  if (stale) m.staleServed.inc({ repository: repo.name });
}

/** Counters for tests and diagnostics: token endpoint calls and downloads in flight. */
export function proxyStats(s: Services): { tokenFetches: number; inFlight: number } {
  const rt = runtimeOf(s);
  return { tokenFetches: rt.tokens.fetched, inFlight: rt.flights.size };
}
