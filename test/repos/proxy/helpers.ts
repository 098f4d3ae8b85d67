/**
 * Test helpers for proxy tests: a counting pass-through in front of an upstream (so tests count what reached
 * the upstream, at the upstream's door), a plain-HTTP image pusher, and deterministic streamed test data.
 */
import { createHash } from 'node:crypto';
import { createServer, request as httpRequest, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';

export interface Counter {
  url: string;
  /** `METHOD path` (query dropped) → count. */
  counts: Map<string, number>;
  count(method: string, pathPart: string): number;
  close(): Promise<void>;
}

/** A loopback HTTP pass-through that counts requests and forwards them unchanged (Host rewritten to itself). */
export async function countingProxy(target: string): Promise<Counter> {
  const t = new URL(target);
  const counts = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const key = `${req.method} ${(req.url ?? '').split('?')[0]}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    counts,
    count(method, pathPart) {
      let n = 0;
      for (const [k, v] of counts) if (k.startsWith(`${method} `) && k.includes(pathPart)) n += v;
      return n;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A plain node:http upstream on loopback that answers with `handler`. */
export async function loopbackUpstream(handler: RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Deterministic pseudo-random bytes, streamed in 1 MiB chunks (nothing large held in memory). */
export function generated(size: number, seed: string): () => Readable {
  const MiB = 1024 * 1024;
  const block = Buffer.alloc(MiB);
  let h = createHash('sha256').update(seed).digest();
  for (let off = 0; off < MiB; off += h.length) {
    h.copy(block, off);
    h = createHash('sha256').update(h).digest();
  }
  return () =>
    Readable.from(
      (function* () {
        let left = size;
        let i = 0;
        while (left > 0) {
          const n = Math.min(MiB, left);
          // Each chunk differs (its index written in), so the data is not periodic.
          const c = Buffer.from(block.subarray(0, n));
          c.writeUInt32BE(i++, 0);
          left -= n;
          yield c;
        }
      })(),
    );
}

export async function digestOf(make: () => Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const c of make()) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

/** Uploads a blob monolithically (POST, then PUT ?digest= with the body streamed). */
export async function pushBlob(base: string, auth: string | null, name: string, body: Buffer | (() => Readable), digest?: string, size?: number): Promise<string> {
  const headers = auth ? { authorization: auth } : {};
  const d = digest ?? sha256(body as Buffer);
  const start = await fetch(`${base}/v2/${name}/blobs/uploads/`, { method: 'POST', headers });
  if (start.status !== 202) throw new Error(`POST upload: ${start.status} ${await start.text()}`);
  await start.arrayBuffer();
  const loc = new URL(start.headers.get('location')!, base);
  loc.searchParams.set('digest', d);
  const data = Buffer.isBuffer(body) ? body : (Readable.toWeb(body()) as ReadableStream);
  const len = Buffer.isBuffer(body) ? body.length : size!;
  const put = await fetch(loc, {
    method: 'PUT',
    headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(len) },
    body: data,
    duplex: 'half',
  } as RequestInit);
  if (put.status !== 201) throw new Error(`PUT upload: ${put.status} ${await put.text()}`);
  await put.arrayBuffer();
  return d;
}

export interface PushedImage {
  manifest: string;
  manifestBytes: Buffer;
  config: string;
  layers: string[];
}

/** Pushes a minimal OCI image (config + given layers) and tags it. */
export async function pushImage(
  base: string,
  auth: string | null,
  name: string,
  tag: string,
  layers: Buffer[],
  extra?: { digest: string; size: number },
  diffIds: string[] = [],
): Promise<PushedImage> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds }, tag }));
  const cd = await pushBlob(base, auth, name, config);
  const ld: { digest: string; size: number }[] = [];
  for (const l of layers) ld.push({ digest: await pushBlob(base, auth, name, l), size: l.length });
  if (extra) ld.push(extra);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cd, size: config.length },
      layers: ld.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
    }),
  );
  const res = await fetch(`${base}/v2/${name}/manifests/${tag}`, {
    method: 'PUT',
    headers: { ...(auth ? { authorization: auth } : {}), 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  if (res.status !== 201) throw new Error(`PUT manifest: ${res.status} ${await res.text()}`);
  return { manifest: sha256(manifest), manifestBytes: manifest, config: cd, layers: ld.map((l) => l.digest) };
}

export async function sha256Of(res: Response): Promise<string> {
  const h = createHash('sha256');
  for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) h.update(c);
  return `sha256:${h.digest('hex')}`;
}

/** GET with node:http (much cheaper than fetch for big bodies): status, headers and the body's sha256. */
export function getSha256(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; digest: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers }, (res) => {
      const h = createHash('sha256');
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        h.update(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, digest: `sha256:${h.digest('hex')}`, bytes }));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('response aborted')));
    });
    req.on('error', reject);
    req.end();
  });
}
