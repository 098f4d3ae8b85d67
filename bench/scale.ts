/**
 * Scale-out benchmark: manifest GET and blob GET throughput (requests/s) of `granary serve` processes
 *   - 1 node vs 2 nodes on PostgreSQL + S3 (s3rver), the load split evenly over the nodes;
 *   - SQLite vs PostgreSQL, one node, blobs on local disk (so only the metadata store differs).
 * Written to bench/results/scale-latest.md; run by `npm run bench` after the OCI benchmark, or alone:
 * `node bench/scale.ts`. Environment: BENCH_CONNECTIONS (32), BENCH_SECONDS (5), BENCH_BLOB_BYTES (262144).
 *
 * Every node is a real process (bin/granary, auth on: each request carries the admin token); s3rver runs in a
 * child process of its own, so the load generator does not share its event loop. All of them, PostgreSQL and
 * the load generator share this machine's cores: read the 2-node numbers with `cores` in mind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, type TestPg } from '../test/helpers/pg.ts';
import { spawnGranary, stopChild } from '../test/helpers/processes.ts';
import { createRepository, OCI_MANIFEST, pushImageBlobs, putManifest, sha256 } from './http-client.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const ADMIN = 'bench-admin-token-0123456789abcdef';
const RESULTS = join(ROOT, 'bench', 'results', 'scale-latest.md');

interface Options {
  connections: number;
  seconds: number;
  blobBytes: number;
}

function options(env: NodeJS.ProcessEnv = process.env): Options {
  return {
    connections: Number(env.BENCH_CONNECTIONS ?? 32),
    seconds: Number(env.BENCH_SECONDS ?? 5),
    blobBytes: Number(env.BENCH_BLOB_BYTES ?? 256 * 1024),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Processes

/** s3rver in a child process (test/helpers/s3.ts), printing its endpoint. */
async function startS3(): Promise<{ child: ChildProcess; endpoint: string; bucket: string }> {
  const helper = join(ROOT, 'test', 'helpers', 's3.ts');
  const code = `const { startTestS3 } = await import(${JSON.stringify(helper)});
const s = await startTestS3('granary-bench');
if (typeof s === 'string') { console.error(s); process.exit(2); }
console.log('ENDPOINT ' + s.endpoint);
process.on('SIGTERM', async () => { await s.stop(); process.exit(0); });`;
  const child = spawn(NODE, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const endpoint = await new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /ENDPOINT (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (c) => reject(new Error(`s3rver exited (${c})`)));
  });
  return { child, endpoint, bucket: 'granary-bench' };
}

// ---------------------------------------------------------------------------------------------------------------
// Data and load

/** Creates repository `bench` and pushes one image (config + one layer of `blobBytes`) as bench/app:v1. */
async function seed(url: string, blobBytes: number): Promise<{ layer: string }> {
  await createRepository(url, ADMIN, { name: 'bench', format: 'oci' });
  const layer = randomBytes(blobBytes);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const t = { label: url, base: url, auth: { authorization: `Bearer ${ADMIN}` } };
  await putManifest(t, 'bench/app', 'v1', await pushImageBlobs(t, 'bench/app', config, [layer]));
  return { layer: sha256(layer) };
}

/**
 * Requests/s of GET `path` with `connections` keep-alive workers spread evenly over `urls`, for `seconds`
 * (after a 1 s warm-up). Bodies are read and discarded; any other status than `status` fails the run.
 */
async function load(urls: string[], path: string, o: Options, headers: Record<string, string> = {}, status = 200): Promise<number> {
  const run = async (seconds: number): Promise<number> => {
    const agents = urls.map(() => new Agent({ keepAlive: true, maxSockets: Math.ceil(o.connections / urls.length) }));
    let done = 0;
    const deadline = performance.now() + seconds * 1000;
    const t0 = performance.now();
    const worker = async (i: number): Promise<void> => {
      const target = new URL(path, urls[i % urls.length]);
      const agent = agents[i % urls.length];
      while (performance.now() < deadline) {
        await new Promise<void>((resolve, reject) => {
          const req = request(target, { agent, headers: { authorization: `Bearer ${ADMIN}`, ...headers } }, (res) => {
            if (res.statusCode !== status) reject(new Error(`GET ${target}: HTTP ${res.statusCode}`));
            res.on('end', resolve).on('error', reject).resume();
          });
          req.on('error', reject).end();
        });
        done++;
      }
    };
    try {
      await Promise.all(Array.from({ length: o.connections }, (_, i) => worker(i)));
    } finally {
      for (const a of agents) a.destroy();
    }
    return done / ((performance.now() - t0) / 1000);
  };
  await run(1);
  return run(o.seconds);
}

// ---------------------------------------------------------------------------------------------------------------
// Setups

interface Row {
  setup: string;
  nodes: number;
  manifestRps: number;
  blobRps: number;
}

async function measure(setup: string, urls: string[], o: Options, log: (s: string) => void, blobStatus = 200): Promise<Row> {
  const { layer } = await seed(urls[0], o.blobBytes);
  const manifestRps = await load(urls, '/v2/bench/app/manifests/v1', o, { accept: OCI_MANIFEST });
  log(`  ${setup}: manifest GET ${manifestRps.toFixed(0)} req/s`);
  const blobRps = await load(urls, `/v2/bench/app/blobs/${layer}`, o, {}, blobStatus);
  log(`  ${setup}: blob GET ${blobRps.toFixed(0)} req/s`);
  return { setup, nodes: urls.length, manifestRps, blobRps };
}

export async function runScaleBench(o: Options = options(), log: (s: string) => void = (s) => console.error(s)): Promise<Row[]> {
  const work = await mkdtemp(join(tmpdir(), 'granary-bench-scale-'));
  const children: ChildProcess[] = [];
  const dbs: TestPg[] = [];
  const db = async (): Promise<string> => {
    const d = await createTestDatabase();
    if (typeof d === 'string') throw new Error(d);
    dbs.push(d);
    return d.url;
  };
  const node = async (name: string, env: Record<string, string>): Promise<string> => {
    const n = await spawnGranary({ dir: join(work, name), adminToken: ADMIN, logLevel: 'info', env });
    children.push(n.child);
    return n.base;
  };
  const stopAll = async (): Promise<void> => {
    await Promise.all(children.splice(0).map((c) => stopChild(c)));
  };
  const rows: Row[] = [];
  try {
    log('scale bench: SQLite vs PostgreSQL, one node, blobs on local disk');
    rows.push(await measure('SQLite + disk', [await node('sqlite', {})], o, log));
    await stopAll();
    const pgFs = { GRANARY_DATABASE_DRIVER: 'postgres', GRANARY_DATABASE_URL: await db() };
    rows.push(await measure('PostgreSQL + disk', [await node('pg-fs', pgFs)], o, log));
    await stopAll();

    log('scale bench: PostgreSQL + S3 (s3rver), 1 node vs 2 nodes');
    const s3 = await startS3();
    try {
      const s3env = (url: string, prefix: string): Record<string, string> => ({
        GRANARY_DATABASE_DRIVER: 'postgres',
        GRANARY_DATABASE_URL: url,
        GRANARY_BLOBS_DRIVER: 's3',
        GRANARY_BLOBS_S3_BUCKET: s3.bucket,
        GRANARY_BLOBS_S3_PREFIX: prefix,
        GRANARY_BLOBS_S3_ENDPOINT: s3.endpoint,
        GRANARY_BLOBS_S3_FORCE_PATH_STYLE: 'true',
        GRANARY_BLOBS_S3_ACCESS_KEY_ID: 'S3RVER',
        GRANARY_BLOBS_S3_SECRET_ACCESS_KEY: 'S3RVER',
      });
      const one = s3env(await db(), 'one/');
      rows.push(await measure('PostgreSQL + S3', [await node('s3-1', one)], o, log));
      await stopAll();
      const two = s3env(await db(), 'two/');
      const a = await node('s3-2a', two);
      const b = await node('s3-2b', two);
      rows.push(await measure('PostgreSQL + S3', [a, b], o, log));
      await stopAll();
      // Presigned redirects: the nodes answer 307 and the bytes would come from the bucket (not followed here).
      const redirect = { ...s3env(await db(), 'redirect/'), GRANARY_BLOBS_S3_REDIRECT: 'true' };
      const ra = await node('s3-ra', redirect);
      const rb = await node('s3-rb', redirect);
      rows.push(await measure('PostgreSQL + S3, redirect (blob GET = 307)', [ra, rb], o, log, 307));
      await stopAll();
    } finally {
      await stopChild(s3.child);
    }
  } finally {
    await stopAll();
    for (const d of dbs) await d.drop();
    await rm(work, { recursive: true, force: true });
  }
  return rows;
}

export function toMarkdown(rows: Row[], o: Options, loadBefore: number[] = loadavg()): string {
  const fmt = (n: number): string => n.toFixed(0);
  const cpu = cpus();
  const lines = [
    '# Scale-out benchmark (bench/scale.ts)',
    '',
    `${new Date().toISOString()} · ${cpu.length} cores (${cpu[0]?.model ?? '?'}) · Node ${process.version} · ` +
      `${o.connections} keep-alive connections split evenly over the nodes, ${o.seconds} s per run after a 1 s warm-up · ` +
      `blob ${o.blobBytes} bytes · auth on (admin token as Bearer) · PostgreSQL on 127.0.0.1 · s3rver (npm S3 emulator, ` +
      'one process, files on local disk) in its own process. Nodes, databases, s3rver and the load generator share these cores ' +
      `(load average before the run: ${loadBefore.map((l) => l.toFixed(1)).join(' / ')}). With ${cpu.length} cores and everything on them, ` +
      'a second node adds no CPU: the 2-node rows show that the shared database and bucket take the load of two nodes ' +
      'without errors, not how far more machines scale.',
    '',
    '| setup | nodes | manifest GET (req/s) | blob GET (req/s) |',
    '|---|---:|---:|---:|',
    ...rows.map((r) => `| ${r.setup} | ${r.nodes} | ${fmt(r.manifestRps)} | ${fmt(r.blobRps)} |`),
  ];
  const s1 = rows.find((r) => r.setup === 'PostgreSQL + S3' && r.nodes === 1);
  const s2 = rows.find((r) => r.setup === 'PostgreSQL + S3' && r.nodes === 2);
  const sq = rows.find((r) => r.setup === 'SQLite + disk');
  const pg = rows.find((r) => r.setup === 'PostgreSQL + disk');
  lines.push('');
  if (s1 && s2) {
    lines.push(`2 nodes / 1 node on PostgreSQL + S3: manifest GET ${(s2.manifestRps / s1.manifestRps).toFixed(2)}×, blob GET ${(s2.blobRps / s1.blobRps).toFixed(2)}×.`);
  }
  if (sq && pg) {
    lines.push(`PostgreSQL / SQLite, one node on local disk: manifest GET ${(pg.manifestRps / sq.manifestRps).toFixed(2)}×, blob GET ${(pg.blobRps / sq.blobRps).toFixed(2)}×.`);
  }
  return lines.join('\n') + '\n';
}

export async function main(): Promise<void> {
  const o = options();
  const loadBefore = loadavg();
  const rows = await runScaleBench(o);
  const md = toMarkdown(rows, o, loadBefore);
  process.stdout.write('\n' + md);
  await mkdir(dirname(RESULTS), { recursive: true });
  await writeFile(RESULTS, md);
  console.error(`\nwritten to ${RESULTS}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
