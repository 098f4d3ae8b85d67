/**
 * Replication on one node: every node can serve the signed feed and its blobs (it may be someone's primary or
 * blob source); a node started with `replication.replicaOf` also follows a primary, refuses client writes (the
 * auth hook asks `readOnlyReason`), and with lazy blobs fetches missing blobs on first read.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ResolvedConfig } from '../config/load.ts';
import { ConfigError } from '../config/errors.ts';
import type { BlobStore } from '../blobs/types.ts';
import type { Db } from '../meta/db.ts';
import { getSetting, setSetting } from '../meta/settings.ts';
import { ChainIndex, EPOCH_SETTING } from './feed.ts';
import { Follower } from './follower.ts';
import { defaultKeyPath, loadOrCreateSigner, rotateSigningKey, verifierFromPem, type FeedSigner } from './keys.ts';
import { lazyBlobStore } from './lazy-store.ts';
import { replicationMetrics, type ReplicationMetrics } from './metrics.ts';
import { readPosition } from './position.ts';
import { BlobSources } from './sources.ts';
import { MirrorWorker, mirrorMetrics } from './mirror/worker.ts';
import { PullWorker } from './mirror/pull-worker.ts';
import type { Services } from '../server/services.ts';

export const PROMOTED_SETTING = 'replication.promoted';

export interface ReplicationHealth {
  ok: boolean;
  role: 'primary' | 'replica';
  primary?: string;
  position?: number;
  lag?: number | null;
  lastContact?: string | null;
  error?: string;
}

export class ReplicationNode {
  readonly config: ResolvedConfig;
  readonly db: Db;
  /** The node's own blobs, what `/api/v1/replication/blobs/…` serves. */
  readonly localBlobs: BlobStore;
  /** What formats read through: the local store, or the lazy-fetching wrapper. */
  readonly blobs: BlobStore;
  readonly chain: ChainIndex;
  readonly metrics: ReplicationMetrics;
  readonly follower: Follower | null;
  /** Push-mirroring rules, running once the services exist (`start`). */
  mirrors: (MirrorWorker | PullWorker)[] = [];
  readonly #registry: Registry;
  readonly #log: Logger;
  #promoted = false;
  #signer: Promise<FeedSigner> | null = null;

  constructor(config: ResolvedConfig, db: Db, localBlobs: BlobStore, log: Logger, registry: Registry, promoted: boolean, onRepositoriesChanged: () => void) {
    this.config = config;
    this.db = db;
    this.localBlobs = localBlobs;
    this.#log = log;
    this.#registry = registry;
    this.#promoted = promoted;
    this.chain = new ChainIndex(db);
    this.metrics = replicationMetrics(registry);
    const r = config.replication;
    if (!r.replicaOf.length || promoted) {
      this.follower = null;
      this.blobs = localBlobs;
      return;
    }
    for (const u of r.replicaOf) {
      let ok = false;
      try {
        ok = ['http:', 'https:'].includes(new URL(u).protocol);
      } catch {
        // not a URL
      }
      if (!ok) throw new ConfigError('replication.replicaOf', `${JSON.stringify(u)} is not an http(s) URL`);
    }
    if (!r.primaryKey) throw new ConfigError('replication.primaryKey', "a replica needs the primary's feed public key (--primary-key <pub.pem>)");
    const keyPath = resolve(r.primaryKey);
    let pem: string;
    try {
      pem = readFileSync(keyPath, 'utf8');
    } catch (e) {
      throw new ConfigError('replication.primaryKey', `cannot read ${keyPath}: ${(e as Error).message}`);
    }
    let key;
    try {
      key = verifierFromPem(pem, keyPath);
    } catch (e) {
      throw new ConfigError('replication.primaryKey', (e as Error).message);
    }
    const sources = new BlobSources(r.replicaOf, r.token, (o) => this.metrics.outcome(o));
    this.blobs =
      r.blobs === 'lazy'
        ? lazyBlobStore(localBlobs, sources, (digest, e) => log.warn({ digest }, `replication: lazy blob fetch failed: ${e.message}`))
        : localBlobs;
    this.follower = new Follower({
      db,
      blobs: localBlobs,
      primary: sources.urls[0],
      sources,
      key,
      repositories: r.repositories,
      eager: r.blobs === 'eager',
      waitSeconds: r.waitSeconds,
      log,
      metrics: this.metrics,
      onRepositoriesChanged,
      stillReplica: async () => {
        if (!this.#promoted && (await getSetting(db, PROMOTED_SETTING)) !== null) {
          this.#promoted = true;
          // Promotion rotated the key on disk: sign with the new one from now on.
          this.#signer = null;
        }
        return !this.#promoted;
      },
    });
  }

  static async open(config: ResolvedConfig, db: Db, localBlobs: BlobStore, log: Logger, registry: Registry, onRepositoriesChanged: () => void): Promise<ReplicationNode> {
    const promoted = (await getSetting(db, PROMOTED_SETTING)) !== null;
    if (promoted && config.replication.replicaOf.length) log.warn('replication: this node was promoted to primary; replication.replicaOf is ignored');
    return new ReplicationNode(config, db, localBlobs, log, registry, promoted, onRepositoriesChanged);
  }

  async start(s: Services): Promise<void> {
    await this.follower?.start();
    if (this.config.replication.mirrors.length) {
      const pushes = mirrorMetrics(this.#registry);
      this.mirrors = this.config.replication.mirrors.map((rule) => (rule.direction === 'pull' ? new PullWorker(s, rule, pushes) : new MirrorWorker(s, rule, pushes)));
      for (const m of this.mirrors) m.start();
      this.#log.info({ rules: this.mirrors.map((m) => m.rule.name) }, 'mirroring started');
    }
  }

  async stop(): Promise<void> {
    await Promise.all([this.follower?.stop(), ...this.mirrors.map((m) => m.stop())]);
  }

  /** Why client writes are refused here, or null when this node takes writes. */
  readOnlyReason(): string | null {
    if (!this.follower || this.#promoted) return null;
    return `this node is a read-only replica of ${this.follower.status.primary}; send writes to the primary`;
  }

  /** The feed signing key: configured, or `<dataDir>/keys/replication.pem` (created on first use). */
  signer(): Promise<FeedSigner> {
    const path = this.config.replication.signingKey ? resolve(this.config.replication.signingKey) : defaultKeyPath(this.config.dataDir);
    this.#signer ??= loadOrCreateSigner(path).catch((e: unknown) => {
      this.#signer = null;
      throw e;
    });
    return this.#signer;
  }

  health(): ReplicationHealth {
    const f = this.follower;
    if (!f || this.#promoted) return { ok: true, role: 'primary' };
    const s = f.status;
    const h: ReplicationHealth = { ok: !s.refused, role: 'replica', primary: s.primary, position: s.position, lag: s.lag, lastContact: s.lastContact };
    if (s.refused) h.error = `feed refused (${s.refused.reason}): ${s.refused.message}`;
    else if (s.error) h.error = s.error;
    return h;
  }
}

/**
 * Promotion (admin command, on the data dir): stop following, take writes, and sign the feed with a fresh key in
 * a later epoch — replicas must be given the new public key, and a feed signed with the old one is refused.
 */
export async function promote(db: Db, keyPath: string): Promise<{ epoch: number; signer: FeedSigner }> {
  const pos = await readPosition(db);
  const current = Number((await getSetting(db, EPOCH_SETTING)) ?? 1);
  const epoch = Math.max(current, pos.epoch) + 1;
  const signer = await rotateSigningKey(keyPath);
  await setSetting(db, EPOCH_SETTING, String(epoch));
  await setSetting(db, PROMOTED_SETTING, new Date().toISOString());
  return { epoch, signer };
}
