/** Prometheus series of replication, registered on the node's registry (one per server instance). */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { FetchOutcome } from './sources.ts';

export interface ReplicationMetrics {
  position: Gauge;
  lag: Gauge;
  lastContact: Gauge;
  applied: Counter;
  refused: Counter<'reason'>;
  errors: Counter;
  blobFetches: Counter<'source' | 'result'>;
  outcome(o: FetchOutcome): void;
}

export function replicationMetrics(registry: Registry): ReplicationMetrics {
  const registers = [registry];
  const blobFetches = new Counter({
    name: 'granary_replication_blob_fetches_total',
    help: 'Blob fetches from replication sources, by source and result (ok, missing, error)',
    labelNames: ['source', 'result'] as const,
    registers,
  });
  return {
    position: new Gauge({ name: 'granary_replication_position', help: 'Last primary event sequence number applied', registers }),
    lag: new Gauge({ name: 'granary_replication_lag_events', help: "Events between the primary's log and this replica's position at last contact", registers }),
    lastContact: new Gauge({ name: 'granary_replication_last_contact_seconds', help: 'Unix time of the last answer from the primary', registers }),
    applied: new Counter({ name: 'granary_replication_events_applied_total', help: 'Replicated events applied', registers }),
    refused: new Counter({
      name: 'granary_replication_pages_refused_total',
      help: 'Feed pages refused before applying anything, by reason (signature, rewind, fork, altered, epoch, malformed)',
      labelNames: ['reason'] as const,
      registers,
    }),
    errors: new Counter({ name: 'granary_replication_errors_total', help: 'Feed requests that failed (primary unreachable, blob unavailable…)', registers }),
    blobFetches,
    outcome: (o) => blobFetches.inc({ source: o.source, result: o.result }),
  };
}
