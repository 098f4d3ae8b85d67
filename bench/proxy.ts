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
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { startRegistry } from '../test/helpers/docker-registry.ts';
import { generated } from '../test/repos/proxy/helpers.ts';
import { spawnGranary, stopChild } from '../test/helpers/processes.ts';

const MiB = 1024 * 1024;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TOKEN = 'bench-admin-token-0123456789abcdef';

export interface ProxyBenchReport {
  bytes: number;
  runs: { name: string; seconds: number; mibPerSecond: number }[];
  granaryPeakRssMiB: number;
}

function parseBytes(v: string | undefined, dflt: number): number {
  if (!v) return dflt;
  const m = /^(\d+)\s*([kmg])?/i.exec(v.trim());
  if (!m) throw new Error(`not a byte count: ${v}`);
  return Number(m[1]) * ({ k: 1024, m: MiB, g: 1024 * MiB }[(m[2] ?? '').toLowerCase()] ?? 1);
}

function get(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      res.on('end', () => resolve(n));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
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

async function push(base: string, name: string, make: () => Readable, digest: string, size: number, headers: Record<string, string> = {}): Promise<void> {
  const start = await fetch(`${base}/v2/${name}/blobs/uploads/`, { method: 'POST', headers });
  if (start.status !== 202) throw new Error(`POST upload: HTTP ${start.status}`);
  const loc = new URL(start.headers.get('location')!, base);
  loc.searchParams.set('digest', digest);
  const put = await fetch(loc, {
    method: 'PUT',
    headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(size) },
    body: Readable.toWeb(make()) as ReadableStream,
    duplex: 'half',
  } as RequestInit);
  if (put.status !== 201) throw new Error(`PUT upload: HTTP ${put.status} ${await put.text()}`);
}

async function peakRssMiB(pid: number): Promise<number> {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

export async function runProxyBench(env: NodeJS.ProcessEnv = process.env): Promise<ProxyBenchReport> {
  const bytes = parseBytes(env.BENCH_PROXY_BYTES, 1024 * MiB);
  const rounds = Math.max(1, Number(env.BENCH_PROXY_ROUNDS ?? 5));
  const dir = await mkdtemp(join(env.BENCH_DIR || tmpdir(), 'granary-proxy-bench-'));
  const reg = await startRegistry(join(dir, 'registry'), { bin: env.DOCKER_REGISTRY });
  let granary: ChildProcess | undefined;
  try {
    const make = generated(bytes, 'granary-proxy-bench');
    const h = createHash('sha256');
    for await (const c of make()) h.update(c as Buffer);
    const digest = `sha256:${h.digest('hex')}`;
    process.stderr.write(`proxy bench: pushing ${bytes / MiB} MiB to docker-registry…\n`);
    await push(reg.base, 'bench/big', make, digest, bytes);
    const g = await spawnGranary(join(dir, 'granary'), TOKEN);
    granary = g.child;
    const create = await fetch(`${g.base}/api/v1/repositories`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'mirror', format: 'oci', kind: 'proxy', upstream: reg.base }),
    });
    if (create.status !== 201) throw new Error(`creating the proxy repository: HTTP ${create.status} ${await create.text()}`);
    const auth = { authorization: `Bearer ${TOKEN}` };
    const runs: ProxyBenchReport['runs'] = [];
    const time = async (name: string, url: string, headers?: Record<string, string>, client = get) => {
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
    const hosted = await fetch(`${g.base}/api/v1/repositories`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'hosted', format: 'oci' }),
    });
    if (hosted.status !== 201) throw new Error(`creating the hosted repository: HTTP ${hosted.status}`);
    await push(g.base, 'hosted/big', make, digest, bytes, auth);
    await time('context: Granary hosted repository (same blob)', `${g.base}/v2/hosted/big/blobs/${digest}`, auth);
    return { bytes, runs, granaryPeakRssMiB: await peakRssMiB(g.child.pid!) };
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
