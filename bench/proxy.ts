/**
 * Proxy benchmark: one blob (default 1 GiB, BENCH_PROXY_BYTES) pulled
 *   direct  from the upstream — Debian's docker-registry (CNCF Distribution) on loopback;
 *   cold    through a Granary OCI proxy repository in front of it (single-flight download, spooled, verified and
 *           stored while streaming to the client);
 *   warm    through the same proxy again (served from Granary's blob store).
 * Both servers are child processes on port 0 (`bin/granary serve` with auth on: every request carries the admin
 * token). Warm and direct pulls alternate for BENCH_PROXY_ROUNDS rounds and are compared by their medians, first
 * with a node:http client that counts bytes, then with curl when installed (less CPU per byte, so nearer to what
 * each server can send). Each pull's length is checked; the cold pull's digest is verified by Granary itself
 * before it caches. Also reported: a hosted repository of the same Granary serving the same blob (the same code
 * path as a warm pull), and Granary's peak RSS.
 *
 * Run alone: `node bench/proxy.ts`; `npm run bench` runs it after the OCI benchmark. Environment:
 * BENCH_PROXY_BYTES (default 1G; K/M/G suffixes), BENCH_PROXY_ROUNDS (default 5), BENCH_DIR (data dirs; default the
 * OS temp dir), DOCKER_REGISTRY (binary, default docker-registry).
 */
import { execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry } from '../test/helpers/docker-registry.ts';
import { generated } from '../test/repos/proxy/helpers.ts';
import { spawnGranary, stopChild } from '../test/helpers/processes.ts';
import { sha256Of } from './data.ts';
import { createRepository, getCount, MiB, parseBytes, pushBlob, rssMiB } from './http-client.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TOKEN = 'bench-admin-token-0123456789abcdef';

export interface ProxyBenchReport {
  bytes: number;
  runs: { name: string; seconds: number; mibPerSecond: number }[];
  granaryPeakRssMiB: number;
}

/** The same GET with curl (a client that costs less CPU per byte than node:http); the byte count it saw. */
function curlGet(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const args = ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url];
    execFile('curl', args, (err, stdout) => {
      if (err) return reject(err);
      const [code, n] = stdout.trim().split(' ');
      if (code !== '200') return reject(new Error(`curl ${url}: HTTP ${code}`));
      resolve(Number(n));
    });
  });
}

const hasCurl = (): boolean => {
  try {
    execFileSync('curl', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

export async function runProxyBench(env: NodeJS.ProcessEnv = process.env): Promise<ProxyBenchReport> {
  const bytes = parseBytes(env.BENCH_PROXY_BYTES, 1024 * MiB);
  const rounds = Math.max(1, Number(env.BENCH_PROXY_ROUNDS ?? 5));
  const dir = await mkdtemp(join(env.BENCH_DIR || tmpdir(), 'granary-proxy-bench-'));
  const reg = await startRegistry(join(dir, 'registry'), { bin: env.DOCKER_REGISTRY });
  let granary: ChildProcess | undefined;
  try {
    const make = generated(bytes, 'granary-proxy-bench');
    const digest = await sha256Of(make());
    process.stderr.write(`proxy bench: pushing ${bytes / MiB} MiB to docker-registry…\n`);
    await pushBlob({ label: 'docker-registry', base: reg.base, auth: {} }, 'bench/big', make(), bytes, digest);
    const g = await spawnGranary({ dir: join(dir, 'granary'), adminToken: TOKEN });
    granary = g.child;
    await createRepository(g.base, TOKEN, { name: 'mirror', format: 'oci', kind: 'proxy', upstream: reg.base });
    const auth = { authorization: `Bearer ${TOKEN}` };
    const runs: ProxyBenchReport['runs'] = [];
    const time = async (name: string, url: string, headers?: Record<string, string>, client: (url: string, headers?: Record<string, string>) => Promise<number> = getCount) => {
      const t0 = performance.now();
      const n = await client(url, headers);
      const seconds = (performance.now() - t0) / 1000;
      if (n !== bytes) throw new Error(`${name}: got ${n} bytes, expected ${bytes}`);
      runs.push({ name, seconds, mibPerSecond: bytes / MiB / seconds });
      process.stderr.write(`proxy bench: ${name} ${seconds.toFixed(2)} s\n`);
    };
    const direct = `${reg.base}/v2/bench/big/blobs/${digest}`;
    const viaProxy = `${g.base}/v2/mirror/bench/big/blobs/${digest}`;
    await time('direct from docker-registry', direct);
    await time('cold through the Granary proxy', viaProxy, auth);
    // Then alternating rounds of both, so neither side wins by page-cache luck or a noisy neighbour alone; the
    // summary compares medians.
    for (let i = 1; i <= rounds; i++) {
      await time(`warm through the Granary proxy #${i}`, viaProxy, auth);
      await time(`direct from docker-registry #${i}`, direct);
    }
    if (hasCurl()) {
      for (let i = 1; i <= rounds; i++) {
        await time(`curl: warm through the Granary proxy #${i}`, viaProxy, auth, curlGet);
        await time(`curl: direct from docker-registry #${i}`, direct, undefined, curlGet);
      }
    }
    // Context: the same blob pushed to a hosted repository of the same Granary — what its own serving costs.
    await createRepository(g.base, TOKEN, { name: 'hosted', format: 'oci' });
    await pushBlob({ label: 'Granary', base: g.base, auth }, 'hosted/big', make(), bytes, digest);
    await time('context: Granary hosted repository (same blob)', `${g.base}/v2/hosted/big/blobs/${digest}`, auth);
    return { bytes, runs, granaryPeakRssMiB: Math.round(await rssMiB(g.child.pid!, 'VmHWM')) };
  } finally {
    await stopChild(granary);
    await reg.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export function proxyMarkdown(r: ProxyBenchReport): string {
  const speeds = (prefix: string) => r.runs.filter((x) => x.name.startsWith(prefix) && x.name.includes('#')).map((x) => x.mibPerSecond);
  const warm = median(speeds('warm through'));
  const direct = median(speeds('direct from'));
  const curlWarm = median(speeds('curl: warm through'));
  const curlDirect = median(speeds('curl: direct from'));
  const lines = [
    `## Proxy: pull of one ${r.bytes / MiB} MiB blob (upstream: docker-registry on loopback)`,
    '',
    '| pull | seconds | MiB/s |',
    '|---|---:|---:|',
    ...r.runs.map((x) => `| ${x.name} | ${x.seconds.toFixed(2)} | ${x.mibPerSecond.toFixed(0)} |`),
    '',
    `**Warm vs direct (medians of the alternating rounds), node:http client: ${warm.toFixed(0)} vs ${direct.toFixed(0)} MiB/s = ${(warm / direct).toFixed(2)}×** (goal ≥ 1×).`,
    ...(Number.isNaN(curlWarm)
      ? []
      : [
          '',
          `**Same with curl as the client** (less CPU per byte, so closer to what each server can send): ${curlWarm.toFixed(0)} vs ${curlDirect.toFixed(0)} MiB/s = ${(curlWarm / curlDirect).toFixed(2)}×.`,
        ]),
    '',
    `Granary peak RSS: ${r.granaryPeakRssMiB} MiB. Cold = one upstream GET spooled to disk while streaming to the client (hashed as written), then fsynced and linked into the blob store once the digest is verified — the client's last byte waits for that, so cold pulls run at the disk's durable-write speed; warm = from the blob store, the same path as a hosted repository (last row).`,
    '',
  ];
  return lines.join('\n');
}

export const proxyResultsPath = (): string => join(ROOT, 'bench', 'results', 'proxy-latest.md');

if (import.meta.url === `file://${process.argv[1]}`) {
  const md = proxyMarkdown(await runProxyBench());
  process.stdout.write('\n' + md);
  await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
  await writeFile(proxyResultsPath(), md);
}
