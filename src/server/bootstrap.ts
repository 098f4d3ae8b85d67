/**
 * Builds the shared services from a resolved config: database (migrated), blob store (swept), auth,
 * repositories (config declarations applied), metrics — and the first-start admin.
 */
import pino, { type Logger } from 'pino';
import type { ResolvedConfig } from '../config/load.ts';
import { openDb, type MetaDb } from '../meta/db.ts';
import { createBlobStore, type BlobStore } from '../blobs/index.ts';
import { AuthService } from '../auth/service.ts';
import { AccountService } from '../auth/accounts.ts';
import { RepoService } from '../repos/service.ts';
import { checkFormats, findFormat } from '../formats/registry.ts';
import { createMetrics } from './metrics.ts';
import { ChangeWatcher } from '../events/watcher.ts';
import { ReplicationNode } from '../replication/node.ts';
import type { Services } from './services.ts';

export function createLogger(config: ResolvedConfig): Logger {
  return pino({
    level: config.logLevel,
    // Credentials never reach the log, whatever a serializer or a debug line decides to print.
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', '*.password', '*.token', '*.secretAccessKey', '*.sessionToken'],
      censor: '[redacted]',
    },
  });
}

export async function openMeta(config: ResolvedConfig): Promise<MetaDb> {
  return config.database.driver === 'sqlite'
    ? openDb({ driver: 'sqlite', path: config.database.path })
    : openDb({
        driver: 'postgres',
        url: config.database.url!,
        poolSize: config.database.poolSize,
        idleTimeoutSeconds: config.database.idleTimeoutSeconds,
        connectTimeoutSeconds: config.database.connectTimeoutSeconds,
        statementTimeoutSeconds: config.database.statementTimeoutSeconds,
      });
}

/** The configured blob store; `sweepOnStart: false` for tools that run beside a live server. */
export function openBlobs(config: ResolvedConfig, opts: { sweepOnStart?: boolean } = {}): Promise<BlobStore> {
  if (config.blobs.driver === 's3') return createBlobStore({ driver: 's3', ...config.blobs.s3!, sweepOnStart: opts.sweepOnStart });
  return createBlobStore({ driver: 'fs', root: config.blobs.path, sweepOnStart: opts.sweepOnStart });
}

export interface Started {
  services: Services;
  /** The admin token created at first start, to show once (never logged). */
  firstAdminToken: string | null;
  close(): Promise<void>;
}

export async function createServices(config: ResolvedConfig, log: Logger = createLogger(config)): Promise<Started> {
  checkFormats();
  const meta = await openMeta(config);
  try {
    const localBlobs = await openBlobs(config);
    const auth = new AuthService(meta.db, {
      failedLoginLimit: config.auth.failedLoginLimit,
      failedLoginWindowSeconds: config.auth.failedLoginWindowSeconds,
      anonymousWrite: config.auth.anonymousWrite,
    });
    const accounts = new AccountService(meta, { tokenTtlDays: config.auth.tokenTtlDays, onChange: () => auth.invalidate() });
    const repos = new RepoService(meta, findFormat, { defaultAnonymousRead: config.auth.anonymousRead });
    await repos.applyDeclarations(config.repositories);
    const first = await accounts.bootstrapAdmin(config.auth.adminToken);
    const metrics = createMetrics(localBlobs);
    // Replica mode: the formats read through the lazy-fetching store when blobs are lazy.
    const replication = await ReplicationNode.open(config, meta.db, localBlobs, log, metrics.registry, () => repos.invalidate());
    const blobs = replication.blobs;
    const changes = new ChangeWatcher(meta.db, () => {
      auth.invalidate();
      repos.invalidate();
    });
    await changes.start();
    const services: Services = { config, meta, blobs, auth, accounts, repos, metrics, changes, replication, log };
    await replication.start(services);
    return {
      services,
      firstAdminToken: first?.token ?? null,
      async close() {
        changes.stop();
        await replication.stop();
        await blobs.close();
        await meta.close();
      },
    };
  } catch (e) {
    await meta.close();
    throw e;
  }
}
