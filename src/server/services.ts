/**
 * The services every part of the server shares, built once at start and handed to each format plug-in.
 * Formats see this interface, never how it is assembled.
 */
import type { Logger } from 'pino';
import type { ResolvedConfig } from '../config/load.ts';
import type { MetaDb } from '../meta/db.ts';
import type { BlobStore } from '../blobs/types.ts';
import type { AuthService } from '../auth/service.ts';
import type { AccountService } from '../auth/accounts.ts';
import type { RepoService } from '../repos/service.ts';
import type { Metrics } from './metrics.ts';
import type { ChangeWatcher } from '../events/watcher.ts';
import type { ReplicationNode } from '../replication/node.ts';

export interface Services {
  config: ResolvedConfig;
  meta: MetaDb;
  blobs: BlobStore;
  auth: AuthService;
  accounts: AccountService;
  repos: RepoService;
  metrics: Metrics;
  /** Follows the event log to clear caches after changes made by other processes. */
  changes: ChangeWatcher;
  /** Feed, peers' blobs and (in replica mode) the follower; the auth hook asks it whether writes are refused. */
  replication?: ReplicationNode;
  log: Logger;
}
