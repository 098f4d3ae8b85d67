/**
 * The OCI benchmark's settings, read once from the environment (see bench/oci.ts for what each one means), and
 * whether the peer it compares against — Distribution's `docker-registry` — is installed.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MiB, parseBytes } from './http-client.ts';

export interface BenchOptions {
  bytes: number;
  chunkBytes: number;
  connections: number;
  seconds: number;
  maxRequests: number;
  registryBin: string;
  dir: string;
}

export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const o: BenchOptions = {
    bytes: parseBytes(env.BENCH_BYTES, 1024 * MiB),
    chunkBytes: parseBytes(env.BENCH_CHUNK_BYTES, 64 * MiB),
    connections: Number(env.BENCH_CONNECTIONS ?? 32),
    seconds: Number(env.BENCH_SECONDS ?? 5),
    maxRequests: Number(env.BENCH_REQUESTS ?? 100_000),
    registryBin: env.DOCKER_REGISTRY ?? 'docker-registry',
    dir: env.BENCH_DIR || tmpdir(),
  };
  if (o.bytes < MiB || o.bytes % MiB !== 0) throw new Error('BENCH_BYTES must be a whole number of MiB, at least 1M');
  if (o.chunkBytes < MiB || o.chunkBytes % MiB !== 0) throw new Error('BENCH_CHUNK_BYTES must be a whole number of MiB');
  return o;
}

export function hasRegistry(o: BenchOptions): boolean {
  if (o.registryBin.includes('/')) return existsSync(o.registryBin);
  return (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, o.registryBin)));
}
