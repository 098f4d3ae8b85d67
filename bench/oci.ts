/**
 * OCI registry benchmark: Granary beside CNCF Distribution (Debian's `docker-registry` 2.8) on loopback, in
 * the same run, measured the same way — plus the run's ceiling (node:crypto sha256, raw node:http, and a
 * streamed write + fdatasync on the same disk, which bounds any durable upload).
 *
 * Each server runs as a child process on port 0 (the port is read from /proc: neither logs it at level
 * warn/error); Granary is `bin/granary serve` with a temp data dir and GRANARY_ADMIN_TOKEN, and every request
 * to it carries that token (auth is on, as in production); Distribution runs with no auth, the config of
 * ../shared/CLIENTS.md (filesystem storage in a temp dir, deletes enabled).
 *
 * Measured: monolithic upload (POST, then one PUT ?digest= with the body — the form both servers accept),
 * chunked upload (PATCH chunks with Content-Range, then PUT ?digest=), blob download, manifest GET, blob HEAD
 * and tags list in requests/s at N concurrent keep-alive connections, and each server's peak RSS (VmHWM)
 * after the pushes. Data is a deterministic stream (16 fixed 1 MiB chunks per salt, cycled), so nothing large is
 * held in memory, generating it costs nothing, and each upload has its own digest.
 *
 * Environment: BENCH_BYTES (default 1G; accepts K/M/G suffixes), BENCH_CHUNK_BYTES (64M),
 * BENCH_CONNECTIONS (32), BENCH_SECONDS (5: time bound of each requests/s run), BENCH_REQUESTS (100000:
 * count bound of each requests/s run), BENCH_DIR (where both servers keep their data; default the OS temp
 * dir — e.g. /dev/shm takes the disk out), DOCKER_REGISTRY (binary, default docker-registry).
 *
 * This file starts the two servers and runs the steps; the pieces live beside it: oci-options.ts (the settings
 * above), oci-ceiling.ts, oci-measure.ts (one server's row), oci-load.ts (requests/s), oci-markdown.ts (the
 * report), data.ts (the streams) and http-client.ts (the client, shared with proxy.ts and scale.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent } from 'node:http';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry } from '../test/helpers/docker-registry.ts';
import { spawnGranary, stopChild } from '../test/helpers/processes.ts';
import { createRepository, MiB } from './http-client.ts';
import { ceiling } from './oci-ceiling.ts';
import type { BenchReport } from './oci-markdown.ts';
import { measure } from './oci-measure.ts';
import type { BenchOptions } from './oci-options.ts';

export { toMarkdown, type BenchReport } from './oci-markdown.ts';
export type { Ceiling } from './oci-ceiling.ts';
export type { ServerResult } from './oci-measure.ts';
export { hasRegistry, optionsFromEnv, type BenchOptions } from './oci-options.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';

async function startDistribution(o: BenchOptions, dir: string): Promise<{ child: ChildProcess; base: string; version: string }> {
  const reg = await startRegistry(dir, { bin: o.registryBin });
  const version = await new Promise<string>((resolve) => {
    const v = spawn(o.registryBin, ['--version']);
    let out = '';
    v.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    v.once('close', () => resolve(out.trim().split(/\s+/).pop() ?? '?'));
    v.once('error', () => resolve('?'));
  });
  return { child: reg.child, base: reg.base, version };
}

export async function runOciBench(o: BenchOptions, log: (s: string) => void = (s) => console.error(s)): Promise<BenchReport> {
  const startedAt = new Date().toISOString();
  const dir = await mkdtemp(join(o.dir, 'granary-bench-oci-'));
  let dist: ChildProcess | undefined;
  let gran: ChildProcess | undefined;
  try {
    log(`ceiling: sha256 and raw node:http with ${o.bytes / MiB} MiB…`);
    const { ceiling: c, digests } = await ceiling(o, dir);
    log(`  sha256 ${c.sha256MBps.toFixed(0)} MB/s, raw upload ${c.httpUploadMBps.toFixed(0)} MB/s, raw download ${c.httpDownloadMBps.toFixed(0)} MB/s, small GET ${c.httpSmallGetRps.toFixed(0)} req/s, durable disk write ${c.durableWriteMBps.toFixed(0)} MB/s`);
    const d = await startDistribution(o, join(dir, 'distribution'));
    dist = d.child;
    const g = await spawnGranary({ dir: join(dir, 'granary'), adminToken: ADMIN_TOKEN });
    gran = g.child;
    await createRepository(g.base, ADMIN_TOKEN, { name: 'bench', format: 'oci' });
    const agentOf = () => new Agent({ keepAlive: true, maxSockets: 4 });
    log(`Distribution ${d.version} at ${d.base}, Granary at ${g.base}`);
    const distribution = await measure(o, { label: 'Distribution', base: d.base, auth: {}, pid: dist.pid!, agent: agentOf() }, digests, log);
    const granary = await measure(o, { label: 'Granary', base: g.base, auth: { authorization: `Bearer ${ADMIN_TOKEN}` }, pid: gran.pid!, agent: agentOf() }, digests, log);
    return {
      options: o,
      ceiling: c,
      distribution,
      granary,
      distributionVersion: d.version,
      startedAt,
      node: process.version,
      cpu: `${cpus()[0]?.model ?? '?'} × ${cpus().length}`,
    };
  } finally {
    await stopChild(gran);
    await stopChild(dist);
    await rm(dir, { recursive: true, force: true });
  }
}

export function resultsPath(): string {
  return join(ROOT, 'bench', 'results', 'oci-latest.md');
}
