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
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent, request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { durableWriteMBps as measureDurableWrite } from './disk-ceiling.ts';
import { startRegistry } from '../test/helpers/docker-registry.ts';
import { spawnGranary, stopChild, waitListening } from '../test/helpers/processes.ts';

const MiB = 1024 * 1024;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export interface BenchOptions {
  bytes: number;
  chunkBytes: number;
  connections: number;
  seconds: number;
  maxRequests: number;
  registryBin: string;
  dir: string;
}

function parseBytes(v: string | undefined, dflt: number): number {
  if (v === undefined || v.trim() === '') return dflt;
  const m = /^(\d+)\s*([kmg]i?b?)?$/i.exec(v.trim());
  if (!m) throw new Error(`not a byte count: ${v}`);
  const mult = { k: 1024, m: MiB, g: 1024 * MiB }[(m[2] ?? '').charAt(0).toLowerCase()] ?? 1;
  return Number(m[1]) * mult;
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

// ---------------------------------------------------------------------------------------------------------------
// Data

/** A fixed pseudo-random 1 MiB block (sha256 chain), the same in every run. */
const BLOCK = (() => {
  const b = Buffer.alloc(MiB);
  let h = createHash('sha256').update('granary-bench').digest();
  for (let off = 0; off < MiB; off += h.length) {
    h.copy(b, off);
    h = createHash('sha256').update(h).digest();
  }
  return b;
})();

const RING = 16;
const rings = new Map<number, Buffer[]>();

/** The 16 distinct 1 MiB chunks a stream cycles through: BLOCK stamped with the salt and the chunk's index. */
function ring(salt: number): Buffer[] {
  let r = rings.get(salt);
  if (!r) {
    r = Array.from({ length: RING }, (_, i) => {
      const b = Buffer.from(BLOCK);
      b.writeUInt32LE(salt, 0);
      b.writeUInt32LE(i, 4);
      return b;
    });
    rings.set(salt, r);
  }
  return r;
}

/**
 * Bytes [startMiB·MiB, startMiB·MiB + size) of the stream named `salt`: chunk n is ring(salt)[n mod 16].
 * The chunks are never written after creation, so they are pushed without copying: generating costs nothing.
 */
function source(size: number, salt: number, startMiB = 0): Readable {
  const chunks = ring(salt);
  let sent = 0;
  let n = startMiB;
  return new Readable({
    highWaterMark: MiB,
    read() {
      if (sent >= size) return void this.push(null);
      const len = Math.min(MiB, size - sent);
      const c = chunks[n++ % RING];
      sent += len;
      this.push(len === MiB ? c : c.subarray(0, len));
    },
  });
}

async function sha256Of(stream: Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const c of stream) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

// ---------------------------------------------------------------------------------------------------------------
// HTTP

interface Res {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Bytes received when the body was discarded. */
  received: number;
}

interface Req {
  method: string;
  url: string;
  headers?: OutgoingHttpHeaders;
  body?: Readable | Buffer;
  agent: Agent;
  /** Count the body's bytes instead of keeping them. */
  discard?: boolean;
}

function send(r: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request(r.url, { method: r.method, headers: r.headers, agent: r.agent }, (res) => {
      const parts: Buffer[] = [];
      let received = 0;
      res.on('data', (c: Buffer) => {
        received += c.length;
        if (!r.discard) parts.push(c);
      });
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts), received }));
      res.once('error', reject);
    });
    req.once('error', reject);
    if (r.body instanceof Readable) r.body.pipe(req);
    else req.end(r.body);
  });
}

function expect(res: Res, status: number, what: string): Res {
  if (res.status !== status) throw new Error(`${what}: HTTP ${res.status} (expected ${status}) ${res.body.toString().slice(0, 300)}`);
  return res;
}

/** One registry under test. */
interface Target {
  label: string;
  base: string;
  auth: OutgoingHttpHeaders;
  pid: number;
  agent: Agent;
}

function locationOf(t: Target, res: Res): string {
  const loc = res.headers.location;
  if (!loc) throw new Error(`${t.label}: no Location header`);
  return new URL(loc, t.base).toString();
}

const withQuery = (url: string, q: string) => `${url}${url.includes('?') ? '&' : '?'}${q}`;

async function startUpload(t: Target, name: string): Promise<string> {
  const res = expect(await send({ method: 'POST', url: `${t.base}/v2/${name}/blobs/uploads/`, headers: { ...t.auth, 'content-length': '0' }, agent: t.agent }), 202, `${t.label} POST upload`);
  return locationOf(t, res);
}

/** POST, then one PUT ?digest= carrying the whole blob. Returns seconds. */
async function uploadMonolithic(t: Target, name: string, size: number, salt: number, digest: string): Promise<number> {
  const t0 = performance.now();
  const loc = await startUpload(t, name);
  const res = await send({
    method: 'PUT',
    url: withQuery(loc, `digest=${encodeURIComponent(digest)}`),
    headers: { ...t.auth, 'content-type': 'application/octet-stream', 'content-length': String(size) },
    body: source(size, salt),
    agent: t.agent,
  });
  expect(res, 201, `${t.label} PUT monolithic`);
  if (res.headers['docker-content-digest'] !== digest) throw new Error(`${t.label}: stored digest ${res.headers['docker-content-digest']} ≠ ${digest}`);
  return (performance.now() - t0) / 1000;
}

/** POST, PATCH chunks with Content-Range, then PUT ?digest= with no body. Returns seconds. */
async function uploadChunked(t: Target, name: string, size: number, chunk: number, salt: number, digest: string): Promise<number> {
  const t0 = performance.now();
  let loc = await startUpload(t, name);
  for (let start = 0; start < size; start += chunk) {
    const len = Math.min(chunk, size - start);
    const body = source(len, salt, start / MiB);
    const res = await send({
      method: 'PATCH',
      url: loc,
      headers: { ...t.auth, 'content-type': 'application/octet-stream', 'content-length': String(len), 'content-range': `${start}-${start + len - 1}` },
      body,
      agent: t.agent,
    });
    loc = locationOf(t, expect(res, 202, `${t.label} PATCH ${start}`));
  }
  const res = await send({ method: 'PUT', url: withQuery(loc, `digest=${encodeURIComponent(digest)}`), headers: { ...t.auth, 'content-length': '0' }, agent: t.agent });
  expect(res, 201, `${t.label} PUT chunked`);
  if (res.headers['docker-content-digest'] !== digest) throw new Error(`${t.label}: stored digest ${res.headers['docker-content-digest']} ≠ ${digest}`);
  return (performance.now() - t0) / 1000;
}

async function download(t: Target, name: string, digest: string, size: number): Promise<number> {
  const t0 = performance.now();
  const res = expect(await send({ method: 'GET', url: `${t.base}/v2/${name}/blobs/${digest}`, headers: t.auth, agent: t.agent, discard: true }), 200, `${t.label} GET blob`);
  if (res.received !== size) throw new Error(`${t.label}: downloaded ${res.received} bytes, expected ${size}`);
  return (performance.now() - t0) / 1000;
}

async function putSmallBlob(t: Target, name: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const loc = await startUpload(t, name);
  const res = await send({
    method: 'PUT',
    url: withQuery(loc, `digest=${encodeURIComponent(digest)}`),
    headers: { ...t.auth, 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) },
    body: bytes,
    agent: t.agent,
  });
  expect(res, 201, `${t.label} PUT small blob`);
  return digest;
}

/** A one-layer image under `tags`; returns the layer digest (for HEAD). */
async function pushImage(t: Target, name: string, tags: string[]): Promise<string> {
  const layer = Buffer.from('granary bench layer\n'.repeat(64));
  const layerDigest = await putSmallBlob(t, name, layer);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layerDigest] } }));
  const configDigest = await putSmallBlob(t, name, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
    }),
  );
  for (const tag of tags) {
    const res = await send({
      method: 'PUT',
      url: `${t.base}/v2/${name}/manifests/${tag}`,
      headers: { ...t.auth, 'content-type': OCI_MANIFEST, 'content-length': String(manifest.length) },
      body: manifest,
      agent: t.agent,
    });
    expect(res, 201, `${t.label} PUT manifest ${tag}`);
  }
  return layerDigest;
}

/**
 * Requests/s: `connections` workers on one keep-alive agent, each sending the next request when the last one
 * finished, until `maxRequests` were sent or `seconds` passed. A short warm-up run comes first. Any status
 * other than `status` fails the measurement.
 */
async function load(o: BenchOptions, req: { method: string; url: string; headers: OutgoingHttpHeaders }, status: number): Promise<number> {
  const run = async (seconds: number, max: number): Promise<number> => {
    const agent = new Agent({ keepAlive: true, maxSockets: o.connections });
    let issued = 0;
    let done = 0;
    const deadline = performance.now() + seconds * 1000;
    const t0 = performance.now();
    const worker = async () => {
      while (issued < max && performance.now() < deadline) {
        issued++;
        const res = await send({ ...req, agent, discard: true });
        if (res.status !== status) throw new Error(`${req.method} ${req.url}: HTTP ${res.status}`);
        done++;
      }
    };
    try {
      await Promise.all(Array.from({ length: o.connections }, worker));
    } finally {
      agent.destroy();
    }
    return done / ((performance.now() - t0) / 1000);
  };
  await run(Math.min(1, o.seconds), Math.max(o.connections * 10, Math.floor(o.maxRequests / 20)));
  return run(o.seconds, o.maxRequests);
}

// ---------------------------------------------------------------------------------------------------------------
// Processes

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

async function startGranary(dir: string): Promise<{ child: ChildProcess; base: string }> {
  const { child, base } = await spawnGranary(dir, ADMIN_TOKEN);
  const res = await fetch(`${base}/api/v1/repositories`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench', format: 'oci' }),
  });
  if (res.status !== 201) throw new Error(`granary: creating repository bench: HTTP ${res.status} ${await res.text()}`);
  return { child, base };
}

/** VmHWM (peak resident set) or VmRSS (now) of a process, in MiB. */
async function rssMiB(pid: number, field: 'VmHWM' | 'VmRSS'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!m) throw new Error(`no ${field} for pid ${pid}`);
  return Number(m[1]) / 1024;
}

// ---------------------------------------------------------------------------------------------------------------
// Ceiling

/** A bare node:http server in its own process: drains uploads, streams downloads, answers small GETs. */
const RAW_SERVER = `
const http = require('node:http');
const block = Buffer.alloc(1 << 20, 7);
const small = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'x', config: {}, layers: [] }));
http.createServer((req, res) => {
  if (req.method === 'PUT') {
    let n = 0;
    req.on('data', (c) => { n += c.length; });
    req.on('end', () => { res.writeHead(201, { 'content-length': 0, 'x-received': n }); res.end(); });
    return;
  }
  const m = /^\\/big\\/(\\d+)$/.exec(req.url);
  if (m) {
    let left = Number(m[1]);
    res.writeHead(200, { 'content-length': left });
    const more = () => {
      while (left > 0) {
        const c = left >= block.length ? block : block.subarray(0, left);
        left -= c.length;
        if (!res.write(c)) return void res.once('drain', more);
      }
      res.end();
    };
    return more();
  }
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': small.length });
  res.end(small);
}).listen(0, '127.0.0.1');
`;

export interface Ceiling {
  sha256MBps: number;
  httpUploadMBps: number;
  httpDownloadMBps: number;
  httpSmallGetRps: number;
  /** Streamed write + fdatasync of the blob size into the data directory (see disk-ceiling.ts). */
  durableWriteMBps: number;
}

/** Also returns the digests of the two upload streams (salt 1: monolithic, salt 2: chunked); the first pass is the timed one. */
async function ceiling(o: BenchOptions, dir: string): Promise<{ ceiling: Ceiling; digests: [string, string] }> {
  const durableWriteMBps = await measureDurableWrite(dir, source(o.bytes, 4), o.bytes);
  let t0 = performance.now();
  const digest = await sha256Of(source(o.bytes, 1));
  const sha256MBps = o.bytes / 1e6 / ((performance.now() - t0) / 1000);
  const digests: [string, string] = [digest, await sha256Of(source(o.bytes, 2))];

  const child = spawn(process.execPath, ['-e', RAW_SERVER], { stdio: 'ignore' });
  try {
    const base = await waitListening(child, 'raw node:http server', '(no log)', '/small');
    const agent = new Agent({ keepAlive: true });
    t0 = performance.now();
    const up = expect(await send({ method: 'PUT', url: `${base}/sink`, headers: { 'content-length': String(o.bytes) }, body: source(o.bytes, 3), agent }), 201, 'raw PUT');
    const httpUploadMBps = o.bytes / 1e6 / ((performance.now() - t0) / 1000);
    if (Number(up.headers['x-received']) !== o.bytes) throw new Error('raw server received a different byte count');
    t0 = performance.now();
    const down = await send({ method: 'GET', url: `${base}/big/${o.bytes}`, agent, discard: true });
    const httpDownloadMBps = down.received / 1e6 / ((performance.now() - t0) / 1000);
    agent.destroy();
    const httpSmallGetRps = await load(o, { method: 'GET', url: `${base}/small`, headers: {} }, 200);
    return { ceiling: { sha256MBps, httpUploadMBps, httpDownloadMBps, httpSmallGetRps, durableWriteMBps }, digests };
  } finally {
    await stopChild(child);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The run

export interface ServerResult {
  label: string;
  monolithicMBps?: number;
  chunkedMBps?: number;
  downloadMBps?: number;
  manifestGetRps?: number;
  blobHeadRps?: number;
  tagsListRps?: number;
  idleRssMiB?: number;
  peakRssMiB?: number;
  errors: string[];
}

async function measure(o: BenchOptions, t: Target, [monolithicDigest, chunkedDigest]: [string, string], log: (s: string) => void): Promise<ServerResult> {
  const r: ServerResult = { label: t.label, errors: [] };
  const name = 'bench/img';
  const step = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      r.errors.push(`${what}: ${(e as Error).message}`);
      log(`  ${t.label}: ${what} failed: ${(e as Error).message}`);
    }
  };
  const mb = o.bytes / 1e6;
  await step('idle RSS', async () => {
    r.idleRssMiB = await rssMiB(t.pid, 'VmRSS');
  });
  await step('monolithic upload', async () => {
    const s = await uploadMonolithic(t, name, o.bytes, 1, monolithicDigest);
    r.monolithicMBps = mb / s;
    log(`  ${t.label}: monolithic upload ${r.monolithicMBps.toFixed(0)} MB/s`);
  });
  await step('chunked upload', async () => {
    r.chunkedMBps = mb / (await uploadChunked(t, name, o.bytes, o.chunkBytes, 2, chunkedDigest));
    log(`  ${t.label}: chunked upload ${r.chunkedMBps.toFixed(0)} MB/s`);
  });
  await step('peak RSS', async () => {
    r.peakRssMiB = await rssMiB(t.pid, 'VmHWM');
  });
  if (r.monolithicMBps !== undefined) {
    await step('download', async () => {
      r.downloadMBps = mb / (await download(t, name, monolithicDigest, o.bytes));
      log(`  ${t.label}: download ${r.downloadMBps.toFixed(0)} MB/s`);
    });
  }
  let layer = '';
  await step('small image', async () => {
    layer = await pushImage(t, name, ['latest', ...Array.from({ length: 20 }, (_, i) => `v${i}`)]);
  });
  if (!layer) return r;
  await step('manifest GET', async () => {
    r.manifestGetRps = await load(o, { method: 'GET', url: `${t.base}/v2/${name}/manifests/latest`, headers: { ...t.auth, accept: OCI_MANIFEST } }, 200);
    log(`  ${t.label}: manifest GET ${r.manifestGetRps.toFixed(0)} req/s`);
  });
  await step('blob HEAD', async () => {
    r.blobHeadRps = await load(o, { method: 'HEAD', url: `${t.base}/v2/${name}/blobs/${layer}`, headers: t.auth }, 200);
    log(`  ${t.label}: blob HEAD ${r.blobHeadRps.toFixed(0)} req/s`);
  });
  await step('tags list', async () => {
    r.tagsListRps = await load(o, { method: 'GET', url: `${t.base}/v2/${name}/tags/list`, headers: t.auth }, 200);
    log(`  ${t.label}: tags list ${r.tagsListRps.toFixed(0)} req/s`);
  });
  return r;
}

export interface BenchReport {
  options: BenchOptions;
  ceiling: Ceiling;
  distribution: ServerResult;
  granary: ServerResult;
  distributionVersion: string;
  startedAt: string;
  node: string;
  cpu: string;
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
    const g = await startGranary(join(dir, 'granary'));
    gran = g.child;
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

// ---------------------------------------------------------------------------------------------------------------
// Report

const fmt = (v: number | undefined, digits = 0) => (v === undefined ? 'n/a' : v.toFixed(digits));

export function toMarkdown(r: BenchReport): string {
  type Row = [metric: string, key: keyof ServerResult, goal: number, higherIsBetter: boolean, unit: string];
  const rows: Row[] = [
    ['monolithic upload (POST + PUT)', 'monolithicMBps', 3, true, 'MB/s'],
    [`chunked upload (${r.options.chunkBytes / MiB} MiB PATCHes)`, 'chunkedMBps', 3, true, 'MB/s'],
    ['blob download', 'downloadMBps', 1, true, 'MB/s'],
    [`manifest GET, ${r.options.connections} connections`, 'manifestGetRps', 3, true, 'req/s'],
    [`blob HEAD, ${r.options.connections} connections`, 'blobHeadRps', 3, true, 'req/s'],
    [`tags list, ${r.options.connections} connections`, 'tagsListRps', 3, true, 'req/s'],
    [`peak RSS (VmHWM) after the ${r.options.bytes / MiB} MiB pushes`, 'peakRssMiB', 1, false, 'MiB'],
    ['RSS when idle, before the pushes (context)', 'idleRssMiB', 0, false, 'MiB'],
  ];
  const lines = [
    `# OCI benchmark — Granary vs CNCF Distribution ${r.distributionVersion}`,
    '',
    `${r.startedAt} · ${r.cpu} · Node ${r.node} · blob ${r.options.bytes / MiB} MiB · ` +
      `requests/s runs: ${r.options.connections} keep-alive connections, ≤ ${r.options.seconds} s or ${r.options.maxRequests} requests each · ` +
      `MB = 10^6 bytes. Data in ${r.options.dir}. Granary with auth (admin API token as Bearer), Distribution without. ` +
      'Clients, servers and the load generator share this machine.',
    '',
    '| metric | unit | Distribution | Granary | Granary / Distribution | goal | met |',
    '|---|---|---:|---:|---:|---|---|',
  ];
  for (const [metric, key, goal, higher, unit] of rows) {
    const dv = r.distribution[key] as number | undefined;
    const gv = r.granary[key] as number | undefined;
    const ratio = dv && gv !== undefined ? gv / dv : undefined;
    const met = goal === 0 || ratio === undefined ? '' : (higher ? ratio >= goal : ratio <= goal) ? 'yes' : 'no';
    const target = goal === 0 ? '' : `${higher ? '≥' : '≤'} ${goal}×`;
    lines.push(`| ${metric} | ${unit} | ${fmt(dv)} | ${fmt(gv)} | ${fmt(ratio, 2)}× | ${target} | ${met} |`);
  }
  lines.push(
    '',
    '## Ceiling (same run, same machine)',
    '',
    '| what | value |',
    '|---|---:|',
    `| sha256 of ${r.options.bytes / MiB} MiB, node:crypto | ${fmt(r.ceiling.sha256MBps)} MB/s |`,
    `| raw loopback HTTP upload, node:http → node:http sink | ${fmt(r.ceiling.httpUploadMBps)} MB/s |`,
    `| raw loopback HTTP download, node:http | ${fmt(r.ceiling.httpDownloadMBps)} MB/s |`,
    `| raw node:http small GETs, ${r.options.connections} connections (load generator's own limit) | ${fmt(r.ceiling.httpSmallGetRps)} req/s |`,
    `| streamed write + fdatasync of ${r.options.bytes / MiB} MiB in the data directory (the disk's durable-write limit) | ${fmt(r.ceiling.durableWriteMBps)} MB/s |`,
  );
  const errors = [...r.distribution.errors.map((e) => `Distribution — ${e}`), ...r.granary.errors.map((e) => `Granary — ${e}`)];
  if (errors.length) lines.push('', '## Errors', '', ...errors.map((e) => `- ${e}`));
  return lines.join('\n') + '\n';
}

export function resultsPath(): string {
  return join(ROOT, 'bench', 'results', 'oci-latest.md');
}

export function hasRegistry(o: BenchOptions): boolean {
  if (o.registryBin.includes('/')) return existsSync(o.registryBin);
  return (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, o.registryBin)));
}
