/**
 * The OCI benchmark's ceiling: what this machine allows in the same run — sha256 by node:crypto, raw node:http
 * upload, download and small GETs against a bare server in its own process, and a streamed write + fdatasync on
 * the data disk, which bounds any durable upload. Read beside each server's figures in bench/oci.ts's table.
 */
import { spawn } from 'node:child_process';
import { Agent } from 'node:http';
import { source, sha256Of } from './data.ts';
import { durableWriteMBps as measureDurableWrite } from './disk-ceiling.ts';
import { expect, send } from './http-client.ts';
import { load } from './oci-load.ts';
import type { BenchOptions } from './oci-options.ts';
import { stopChild, waitListening } from '../test/helpers/processes.ts';

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
export async function ceiling(o: BenchOptions, dir: string): Promise<{ ceiling: Ceiling; digests: [string, string] }> {
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
