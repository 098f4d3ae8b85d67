/**
 * Prometheus metrics. One registry per server instance (tests run many in one process), exposed at /metrics.
 * Formats and repos add their own counters through `metrics.registry`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BlobStore } from '../blobs/types.ts';

export interface Metrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'format' | 'status'>;
  duration: Histogram<'method' | 'route' | 'format'>;
  bytesIn: Counter<'format'>;
  bytesOut: Counter<'format'>;
}

/** How long a computed blob-store size is reused: walking a large store on every scrape would be costly. */
const STORE_SIZE_TTL_MS = 5 * 60_000;

export function createMetrics(blobs: BlobStore): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'granary_process_' });
  const requests = new Counter({
    name: 'granary_http_requests_total',
    help: 'HTTP requests by route, format and status',
    labelNames: ['method', 'route', 'format', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'granary_http_request_duration_seconds',
    help: 'HTTP request latency',
    labelNames: ['method', 'route', 'format'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const bytesIn = new Counter({ name: 'granary_http_bytes_in_total', help: 'Request bytes received', labelNames: ['format'] as const, registers: [registry] });
  const bytesOut = new Counter({ name: 'granary_http_bytes_out_total', help: 'Response bytes sent', labelNames: ['format'] as const, registers: [registry] });

  let cached: { at: number; bytes: number; count: number } | null = null;
  let computing: Promise<void> | null = null;
  const refresh = () => {
    computing ??= (async () => {
      let bytes = 0;
      let count = 0;
      for await (const b of blobs.list()) {
        bytes += b.size;
        count++;
      }
      cached = { at: Date.now(), bytes, count };
    })()
      .catch(() => {})
      .finally(() => {
        computing = null;
      });
    return computing;
  };
  const stale = () => !cached || Date.now() - cached.at > STORE_SIZE_TTL_MS;
  new Gauge({
    name: 'granary_blob_store_bytes',
    help: 'Bytes held by the blob store (recomputed at most every 5 minutes)',
    registers: [registry],
    async collect() {
      if (!cached) await refresh();
      else if (stale()) void refresh();
      this.set(cached?.bytes ?? 0);
    },
  });
  new Gauge({
    name: 'granary_blob_store_blobs',
    help: 'Blobs held by the blob store (recomputed at most every 5 minutes)',
    registers: [registry],
    async collect() {
      if (!cached) await refresh();
      this.set(cached?.count ?? 0);
    },
  });
  return { registry, requests, duration, bytesIn, bytesOut };
}
