/**
 * Test helper: N real `granary serve` processes (bin/granary) sharing one throwaway PostgreSQL database and one
 * s3rver bucket — the scale-out deployment in miniature. Each node has its own data dir (nothing shared on disk)
 * and is configured only through GRANARY_* variables, as a container would be.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, type TestPg } from '../helpers/pg.ts';
import { spawnGranary } from '../helpers/processes.ts';
import { startTestS3, type TestS3 } from '../helpers/s3.ts';

export const ADMIN = 'scale-admin-token-0123456789abcdef';

export interface Node {
  name: string;
  url: string;
  child: ChildProcess;
  /** fetch relative to the node, as admin unless `auth` says otherwise (null = anonymous). */
  fetch(path: string, init?: RequestInit & { auth?: string | null }): Promise<Response>;
  /** Sends `signal` and resolves once the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  output(): string;
}

export interface Cluster {
  pg: TestPg;
  s3: TestS3;
  work: string;
  /** Starts one more node on the shared database and bucket. */
  start(name: string, env?: Record<string, string>): Promise<Node>;
  close(): Promise<void>;
}

/** The shared stores, or a skip reason when PostgreSQL or s3rver is unavailable. */
export async function createCluster(): Promise<Cluster | string> {
  const pg = await createTestDatabase();
  if (typeof pg === 'string') return pg;
  const s3 = await startTestS3('granary-scale');
  if (typeof s3 === 'string') {
    await pg.drop();
    return s3;
  }
  const work = await mkdtemp(join(tmpdir(), 'granary-scale-'));
  const nodes: Node[] = [];
  const env = {
    // one compile cache for every spawn: each loads the whole CLI
    NODE_COMPILE_CACHE: join(work, '.compile-cache'),
    GRANARY_DATABASE_DRIVER: 'postgres',
    GRANARY_DATABASE_URL: pg.url,
    GRANARY_DATABASE_POOL_SIZE: '5',
    GRANARY_BLOBS_DRIVER: 's3',
    GRANARY_BLOBS_S3_BUCKET: s3.bucket,
    GRANARY_BLOBS_S3_ENDPOINT: s3.endpoint,
    GRANARY_BLOBS_S3_REGION: s3.region,
    GRANARY_BLOBS_S3_FORCE_PATH_STYLE: 'true',
    GRANARY_BLOBS_S3_ACCESS_KEY_ID: s3.accessKeyId,
    GRANARY_BLOBS_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
  };

  async function start(name: string, extra: Record<string, string> = {}): Promise<Node> {
    const p = await spawnGranary({
      dir: work,
      dataDir: join(work, name),
      logFile: join(work, `${name}.log`),
      adminToken: ADMIN,
      logLevel: 'info',
      env: { ...env, ...extra },
    });
    const url = p.base;
    const node: Node = {
      name,
      url,
      child: p.child,
      fetch(path, init = {}) {
        const { auth, headers, ...rest } = init;
        const a = auth === undefined ? ADMIN : auth;
        return fetch(url + path, {
          ...rest,
          headers: { ...(a === null ? {} : { authorization: `Bearer ${a}` }), ...(headers as Record<string, string> | undefined) },
        });
      },
      kill: (signal = 'SIGTERM') => p.stop(signal),
      output: p.output,
    };
    nodes.push(node);
    return node;
  }

  return {
    pg,
    s3,
    work,
    start,
    async close() {
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
      await s3.stop();
      await pg.drop();
      await rm(work, { recursive: true, force: true });
    },
  };
}
