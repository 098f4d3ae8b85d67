/**
 * Per-server proxy state: upstream clients (rebuilt when a repository's record changes), the token cache,
 * in-flight downloads, freshness of mutable metadata, the negative cache and the metrics. One per Services,
 * so tests running several servers in one process keep them apart.
 */
import { join } from 'node:path';
import { Counter } from 'prom-client';
import type { RepositoryRecord } from '../../meta/repos.ts';
import type { Services } from '../../server/services.ts';
import { createTokenCache, type TokenCache } from './auth.ts';
import { Flights } from './flight.ts';
import { createUpstreamClient, type UpstreamClient } from './upstream.ts';

export interface ProxyMetrics {
  hits: Counter<'repository'>;
  misses: Counter<'repository'>;
  upstreamErrors: Counter<'repository'>;
  bytesFetched: Counter<'repository'>;
  staleServed: Counter<'repository'>;
}

export interface ProxyRuntime {
  client(repo: RepositoryRecord): UpstreamClient;
  tokens: TokenCache;
  flights: Flights;
  /** repoId:path → when the mutable object was last confirmed by the upstream (ms). */
  fresh: Map<string, number>;
  /** repoId:path → until when a 404 is believed (ms). */
  negative: Map<string, number>;
  /** repoId:path → a revalidation under way (mutable objects are single-flighted too). */
  revalidating: Map<string, Promise<unknown>>;
  metrics: ProxyMetrics;
}

const runtimes = new WeakMap<Services, ProxyRuntime>();
const MAX_ENTRIES = 100_000;

/** Bounded set for the freshness and negative maps: oldest entries go first. */
export function remember(map: Map<string, number>, key: string, value: number): void {
  map.delete(key);
  if (map.size >= MAX_ENTRIES) map.delete(map.keys().next().value!);
  map.set(key, value);
}

function createMetrics(s: Services): ProxyMetrics {
  const reg = s.metrics.registry;
  const c = (name: string, help: string) => new Counter({ name, help, labelNames: ['repository'] as const, registers: [reg] });
  return {
    hits: c('granary_proxy_cache_hits_total', 'Proxy reads answered from the cache'),
    misses: c('granary_proxy_cache_misses_total', 'Proxy reads that went to the upstream'),
    upstreamErrors: c('granary_proxy_upstream_errors_total', 'Upstream failures (after retries)'),
    bytesFetched: c('granary_proxy_upstream_bytes_total', 'Bytes fetched from upstreams'),
    staleServed: c('granary_proxy_stale_served_total', 'Mutable metadata served past its TTL because the upstream failed'),
  };
}

export function runtimeOf(s: Services): ProxyRuntime {
  let rt = runtimes.get(s);
  if (rt) return rt;
  const tokens = createTokenCache();
  const clients = new Map<string, { version: string; client: UpstreamClient }>();
  rt = {
    client(repo) {
      const version = `${repo.id}|${repo.updatedAt}|${JSON.stringify(repo.config)}`;
      const c = clients.get(repo.name);
      if (c && c.version === version) return c.client;
      if (c) void c.client.close().catch(() => {});
      const client = createUpstreamClient(repo, tokens, () => rt!.metrics.upstreamErrors.inc({ repository: repo.name }));
      clients.set(repo.name, { version, client });
      return client;
    },
    tokens,
    flights: new Flights(join(s.config.dataDir, 'proxy-spool')),
    fresh: new Map(),
    negative: new Map(),
    revalidating: new Map(),
    metrics: createMetrics(s),
  };
  runtimes.set(s, rt);
  return rt;
}
