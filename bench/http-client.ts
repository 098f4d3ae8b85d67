/**
 * The benchmarks' client side, shared so each bench measures the same way: node:http requests that can count a
 * body instead of keeping it, the OCI blob push (POST, then one PUT ?digest=), repository creation, peak RSS
 * from /proc and the byte counts (K/M/G) the BENCH_* variables take. Used by bench/oci*.ts, proxy.ts, scale.ts.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request, type Agent, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';

export const MiB = 1024 * 1024;
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** `64M`, `1G`, `512KiB`, `1048576`…; `dflt` when unset or empty. */
export function parseBytes(v: string | undefined, dflt: number): number {
  if (v === undefined || v.trim() === '') return dflt;
  const m = /^(\d+)\s*([kmg]i?b?)?$/i.exec(v.trim());
  if (!m) throw new Error(`not a byte count: ${v}`);
  const mult = { k: 1024, m: MiB, g: 1024 * MiB }[(m[2] ?? '').charAt(0).toLowerCase()] ?? 1;
  return Number(m[1]) * mult;
}

export interface Res {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Bytes received when the body was discarded. */
  received: number;
}

export interface Req {
  method: string;
  url: string;
  headers?: OutgoingHttpHeaders;
  body?: Readable | Buffer;
  /** Default: node:http's global agent. */
  agent?: Agent;
  /** Count the body's bytes instead of keeping them. */
  discard?: boolean;
}

export function send(r: Req): Promise<Res> {
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

export function expect(res: Res, status: number, what: string): Res {
  if (res.status !== status) throw new Error(`${what}: HTTP ${res.status} (expected ${status}) ${res.body.toString().slice(0, 300)}`);
  return res;
}

/** GET with the body counted, not kept; fails unless 200. Returns the byte count. */
export async function getCount(url: string, headers: OutgoingHttpHeaders = {}): Promise<number> {
  return expect(await send({ method: 'GET', url, headers, discard: true }), 200, `GET ${url}`).received;
}

/** One registry a bench talks to. */
export interface Target {
  label: string;
  base: string;
  auth: OutgoingHttpHeaders;
  agent?: Agent;
}

export function locationOf(t: Target, res: Res): string {
  const loc = res.headers.location;
  if (!loc) throw new Error(`${t.label}: no Location header`);
  return new URL(loc, t.base).toString();
}

export const withQuery = (url: string, q: string): string => `${url}${url.includes('?') ? '&' : '?'}${q}`;

export async function startUpload(t: Target, name: string): Promise<string> {
  const res = expect(await send({ method: 'POST', url: `${t.base}/v2/${name}/blobs/uploads/`, headers: { ...t.auth, 'content-length': '0' }, agent: t.agent }), 202, `${t.label} POST upload`);
  return locationOf(t, res);
}

/** PUT ?digest= closing the upload at `loc` (with the blob as body, or none after PATCHes); checks the stored digest. */
export async function finishUpload(t: Target, loc: string, digest: string, body?: { data: Readable | Buffer; size: number }): Promise<void> {
  const headers = body ? { ...t.auth, 'content-type': 'application/octet-stream', 'content-length': String(body.size) } : { ...t.auth, 'content-length': '0' };
  const res = await send({ method: 'PUT', url: withQuery(loc, `digest=${encodeURIComponent(digest)}`), headers, body: body?.data, agent: t.agent });
  expect(res, 201, `${t.label} PUT ${body ? 'blob' : 'closing upload'}`);
  if (res.headers['docker-content-digest'] !== digest) throw new Error(`${t.label}: stored digest ${res.headers['docker-content-digest']} ≠ ${digest}`);
}

/** A monolithic push: POST, then one PUT ?digest= carrying the whole blob. */
export async function pushBlob(t: Target, name: string, data: Readable | Buffer, size: number, digest: string): Promise<void> {
  await finishUpload(t, await startUpload(t, name), digest, { data, size });
}

/** Pushes `config` and `layers` and returns the OCI image manifest naming them. */
export async function pushImageBlobs(t: Target, name: string, config: Buffer, layers: Buffer[]): Promise<Buffer> {
  for (const b of [...layers, config]) await pushBlob(t, name, b, b.length, sha256(b));
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(l), size: l.length })),
    }),
  );
}

export async function putManifest(t: Target, name: string, tag: string, manifest: Buffer): Promise<void> {
  const headers = { ...t.auth, 'content-type': OCI_MANIFEST, 'content-length': String(manifest.length) };
  expect(await send({ method: 'PUT', url: `${t.base}/v2/${name}/manifests/${tag}`, headers, body: manifest, agent: t.agent }), 201, `${t.label} PUT manifest ${tag}`);
}

/** POST /api/v1/repositories with `token` as admin; fails unless 201. */
export async function createRepository(base: string, token: string, body: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${base}/api/v1/repositories`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`creating repository ${String(body.name)} at ${base}: HTTP ${res.status} ${await res.text()}`);
}

/** VmHWM (peak resident set) or VmRSS (now) of a process, in MiB. */
export async function rssMiB(pid: number, field: 'VmHWM' | 'VmRSS'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!m) throw new Error(`no ${field} for pid ${pid}`);
  return Number(m[1]) / 1024;
}
