/**
 * Test helper: pushes images through the OCI distribution API with fetch, the way a client does (HEAD each blob,
 * upload the missing ones, PUT the manifest) — fast enough for dozens of concurrent pushes, each request sent to
 * whichever node the caller picks.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Node } from './cluster.ts';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';

export const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface Blob {
  digest: string;
  bytes: Buffer;
}

export function blobOf(bytes: Buffer): Blob {
  return { digest: sha256(bytes), bytes };
}

export function randomBlob(size: number): Blob {
  return blobOf(randomBytes(size));
}

export interface Image {
  config: Blob;
  layers: Blob[];
  manifest: Buffer;
  digest: string;
}

/** An image manifest over `layers`, with a config that makes it unique (`label`). */
export function makeImage(layers: Blob[], label: string): Image {
  const config = blobOf(
    Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: { push: label } }, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } })),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.bytes.length },
      layers: layers.map((l) => ({ mediaType: OCI_LAYER, digest: l.digest, size: l.bytes.length })),
    }),
  );
  return { config, layers, manifest, digest: sha256(manifest) };
}

async function expect(res: Response, status: number, what: string): Promise<Response> {
  if (res.status !== status) throw new Error(`${what}: ${res.status} ${await res.text()}`);
  return res;
}

/** Uploads a blob unless the node has it: POST, then one PUT with the bytes (monolithic, in two requests). */
export async function pushBlob(node: Node, repo: string, blob: Blob): Promise<void> {
  const head = await node.fetch(`/v2/${repo}/blobs/${blob.digest}`, { method: 'HEAD' });
  if (head.status === 200) return;
  const start = await expect(await node.fetch(`/v2/${repo}/blobs/uploads/`, { method: 'POST' }), 202, `POST upload ${repo}`);
  await start.arrayBuffer();
  const loc = start.headers.get('location')!;
  const sep = loc.includes('?') ? '&' : '?';
  const put = await node.fetch(`${loc}${sep}digest=${encodeURIComponent(blob.digest)}`, {
    method: 'PUT',
    body: blob.bytes,
    headers: { 'content-type': 'application/octet-stream' },
  });
  await expect(put, 201, `PUT blob ${blob.digest}`);
  await put.arrayBuffer();
}

export async function putManifest(node: Node, repo: string, ref: string, manifest: Buffer): Promise<void> {
  const res = await node.fetch(`/v2/${repo}/manifests/${ref}`, { method: 'PUT', body: manifest, headers: { 'content-type': OCI_MANIFEST } });
  await expect(res, 201, `PUT manifest ${repo}:${ref}`);
  await res.arrayBuffer();
}

/** A whole push: every blob, then the manifest under `tag`; `pick` chooses the node of each request. */
export async function pushImage(pick: () => Node, repo: string, tag: string, image: Image): Promise<void> {
  await Promise.all([image.config, ...image.layers].map((b) => pushBlob(pick(), repo, b)));
  await putManifest(pick(), repo, tag, image.manifest);
}
