/**
 * One registry's row of the OCI benchmark: monolithic and chunked upload, download, peak RSS, then manifest GET,
 * blob HEAD and tags list in requests/s — each step timed the same way for Granary and for Distribution, and a
 * failed step recorded as an error instead of ending the run.
 */
import type { Agent } from 'node:http';
import { source } from './data.ts';
import { expect, finishUpload, locationOf, MiB, OCI_MANIFEST, pushBlob, pushImageBlobs, putManifest, rssMiB, send, sha256, startUpload, type Target as Client } from './http-client.ts';
import { load } from './oci-load.ts';
import type { BenchOptions } from './oci-options.ts';

/** One registry under test: its process (for RSS) and its own keep-alive agent. */
export interface Target extends Client {
  pid: number;
  agent: Agent;
}

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

/** Seconds `fn` took. */
async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/** POST, then one PUT ?digest= carrying the whole blob. Returns seconds. */
function uploadMonolithic(t: Target, name: string, size: number, salt: number, digest: string): Promise<number> {
  return seconds(() => pushBlob(t, name, source(size, salt), size, digest));
}

/** POST, PATCH chunks with Content-Range, then PUT ?digest= with no body. Returns seconds. */
function uploadChunked(t: Target, name: string, size: number, chunk: number, salt: number, digest: string): Promise<number> {
  return seconds(async () => {
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
    await finishUpload(t, loc, digest);
  });
}

function download(t: Target, name: string, digest: string, size: number): Promise<number> {
  return seconds(async () => {
    const res = expect(await send({ method: 'GET', url: `${t.base}/v2/${name}/blobs/${digest}`, headers: t.auth, agent: t.agent, discard: true }), 200, `${t.label} GET blob`);
    if (res.received !== size) throw new Error(`${t.label}: downloaded ${res.received} bytes, expected ${size}`);
  });
}

/** A one-layer image under `tags`; returns the layer digest (for HEAD). */
async function pushImage(t: Target, name: string, tags: string[]): Promise<string> {
  const layer = Buffer.from('granary bench layer\n'.repeat(64));
  const config = (layerDigest: string) => Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layerDigest] } }));
  const manifest = await pushImageBlobs(t, name, config(sha256(layer)), [layer]);
  for (const tag of tags) await putManifest(t, name, tag, manifest);
  return sha256(layer);
}

export async function measure(o: BenchOptions, t: Target, [monolithicDigest, chunkedDigest]: [string, string], log: (s: string) => void): Promise<ServerResult> {
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
