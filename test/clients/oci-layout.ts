/**
 * Test helper: writes a valid OCI image layout (image-spec v1.1 image-layout.md) for real clients to push, e.g.
 * `skopeo copy oci:<dir>:<tag> docker://127.0.0.1:<port>/<name>:<tag>` — plus `hasClient` for tests that skip
 * with a visible reason when a client binary is missing.
 *
 * Layers are tiny gzip'd ustar archives written by hand (512-byte header + content padded to 512 + two zero
 * blocks, rounded up to a 10 KiB record like GNU tar), so no tar package is needed. Everything is deterministic:
 * the same options give the same digests.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { gzipSync } from 'node:zlib';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const REF_NAME = 'org.opencontainers.image.ref.name';
/** Fixed timestamp for tar entries and configs (2024-01-01T00:00:00Z), so digests are reproducible. */
const EPOCH = 1704067200;

// ---------------------------------------------------------------------------------------------------------------
// Clients on PATH

/** Whether an executable named `cmd` is on PATH. */
export function hasClient(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const file = join(dir, cmd);
    try {
      accessSync(file, constants.X_OK);
      if (statSync(file).isFile()) return true;
    } catch {
      // not here
    }
  }
  return false;
}

/**
 * For node:test's `skip` option: false when every command is on PATH, else the reason to print.
 * `test('push', { skip: missingClient('skopeo') }, async () => { ... })`
 */
export function missingClient(...cmds: string[]): string | false {
  const missing = cmds.filter((c) => !hasClient(c));
  return missing.length === 0 ? false : `not on PATH: ${missing.join(', ')} (apt-get install -y ${missing.join(' ')})`;
}

// ---------------------------------------------------------------------------------------------------------------
// Tar

export interface TarEntry {
  /** Relative path, '/'-separated; directories may omit the trailing '/'. */
  path: string;
  type: 'file' | 'dir';
  content?: string | Buffer;
  /** Default 0o644 for files, 0o755 for directories. */
  mode?: number;
}

function octal(value: number, width: number): string {
  // width includes the terminating NUL
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function splitName(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  // ustar: prefix (≤155) + '/' + name (≤100), split at a '/'
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== '/') continue;
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name !== '') return { name, prefix };
  }
  throw new Error(`tar: path too long for ustar: ${path}`);
}

function tarHeader(entry: TarEntry, size: number): Buffer {
  const h = Buffer.alloc(512, 0);
  const path = entry.type === 'dir' && !entry.path.endsWith('/') ? `${entry.path}/` : entry.path;
  const { name, prefix } = splitName(path);
  const mode = entry.mode ?? (entry.type === 'dir' ? 0o755 : 0o644);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(mode, 8), 100, 8, 'ascii');
  h.write(octal(0, 8), 108, 8, 'ascii'); // uid
  h.write(octal(0, 8), 116, 8, 'ascii'); // gid
  h.write(octal(size, 12), 124, 12, 'ascii');
  h.write(octal(EPOCH, 12), 136, 12, 'ascii'); // mtime
  h.write('        ', 148, 8, 'ascii'); // checksum placeholder: 8 spaces
  h.write(entry.type === 'dir' ? '5' : '0', 156, 1, 'ascii');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  h.write('root', 265, 32, 'ascii'); // uname
  h.write('root', 297, 32, 'ascii'); // gname
  h.write(octal(0, 8), 329, 8, 'ascii'); // devmajor
  h.write(octal(0, 8), 337, 8, 'ascii'); // devminor
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

/** A POSIX ustar archive of the entries, in order, ending with two zero blocks and padded to 10240 bytes. */
export function tarArchive(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = e.type === 'dir' ? Buffer.alloc(0) : Buffer.isBuffer(e.content) ? e.content : Buffer.from(e.content ?? '', 'utf8');
    parts.push(tarHeader(e, body.length), body);
    const pad = (512 - (body.length % 512)) % 512;
    if (pad > 0) parts.push(Buffer.alloc(pad, 0));
  }
  parts.push(Buffer.alloc(1024, 0));
  let archive = Buffer.concat(parts);
  const record = 10240;
  if (archive.length % record !== 0) archive = Buffer.concat([archive, Buffer.alloc(record - (archive.length % record), 0)]);
  return archive;
}

// ---------------------------------------------------------------------------------------------------------------
// Layout

export interface LayoutPlatform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface WriteLayoutOptions {
  /** Tag recorded as org.opencontainers.image.ref.name in index.json. Default 'latest'. */
  tag?: string;
  /** Number of gzip'd tar layers per image. Default 2. */
  layers?: number;
  /** Extra incompressible bytes added to the first layer of each image (to exercise big/chunked uploads). */
  extraBytes?: number;
  /** Write a multi-arch image index over one image per platform (default platforms: linux/amd64, linux/arm64). */
  multiArch?: boolean;
  /** Platforms: the single image uses the first (default linux/amd64). */
  platforms?: LayoutPlatform[];
  /** Mixed into every file so different seeds give different digests. Default 'granary'. */
  seed?: string;
  /** Annotations on the image manifest(s). */
  annotations?: Record<string, string>;
}

export interface LayoutBlob {
  digest: string;
  size: number;
}

export interface LayoutImage {
  platform: LayoutPlatform;
  manifest: LayoutBlob;
  config: LayoutBlob;
  layers: (LayoutBlob & { diffId: string })[];
}

export interface OciLayout {
  dir: string;
  tag: string;
  /** `oci:<dir>:<tag>`, for skopeo. */
  ref: string;
  /** What the tag points at: the index when multiArch, else the image manifest. */
  top: LayoutBlob & { mediaType: string };
  images: LayoutImage[];
  /** The index blob, when multiArch. */
  index?: LayoutBlob;
  /** Every blob written for this tag (manifests, configs, layers, index). */
  blobs: string[];
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** Deterministic incompressible bytes. */
function noise(size: number, seed: string): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let off = 0; off < size; off += block.length) {
    block.copy(out, off, 0, Math.min(block.length, size - off));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

async function putBlob(dir: string, bytes: Buffer, written: string[]): Promise<LayoutBlob> {
  const digest = sha256(bytes);
  const file = join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  if (!existsSync(file)) await writeFile(file, bytes);
  written.push(digest);
  return { digest, size: bytes.length };
}

function platformLabel(p: LayoutPlatform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

async function writeImage(dir: string, platform: LayoutPlatform, opts: Required<Pick<WriteLayoutOptions, 'layers' | 'seed' | 'extraBytes'>> & { annotations?: Record<string, string> }, written: string[]): Promise<LayoutImage> {
  const label = platformLabel(platform);
  const layers: LayoutImage['layers'] = [];
  for (let i = 0; i < opts.layers; i++) {
    const entries: TarEntry[] = [
      { path: 'etc', type: 'dir' },
      { path: 'etc/granary', type: 'dir' },
      { path: `etc/granary/layer-${i}.txt`, type: 'file', content: `${opts.seed} layer ${i} for ${label}\n` },
    ];
    if (i === 0 && opts.extraBytes > 0) {
      entries.push({ path: 'etc/granary/noise.bin', type: 'file', content: noise(opts.extraBytes, `${opts.seed}/${label}`) });
    }
    const tar = tarArchive(entries);
    const gz = gzipSync(tar);
    const blob = await putBlob(dir, gz, written);
    layers.push({ ...blob, diffId: sha256(tar) });
  }
  const created = new Date(EPOCH * 1000).toISOString();
  const config = {
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Cmd: ['/bin/sh'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Labels: { 'org.example.seed': opts.seed } },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({ created, created_by: `granary test layer ${i}` })),
  };
  const configBlob = await putBlob(dir, Buffer.from(JSON.stringify(config)), written);
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: configBlob.digest, size: configBlob.size },
    layers: layers.map((l) => ({ mediaType: OCI_LAYER_GZIP, digest: l.digest, size: l.size })),
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
  };
  const manifestBlob = await putBlob(dir, Buffer.from(JSON.stringify(manifest)), written);
  return { platform, manifest: manifestBlob, config: configBlob, layers };
}

/**
 * Writes (or adds a tag to) an OCI image layout in `dir`: `oci-layout`, `index.json`, `blobs/sha256/…`.
 * An existing layout is kept and its index.json gains the tag (replacing an entry with the same tag), so one
 * directory can hold a single-platform tag and a multi-arch tag side by side.
 */
export async function writeOciLayout(dir: string, opts: WriteLayoutOptions = {}): Promise<OciLayout> {
  const tag = opts.tag ?? 'latest';
  const seed = opts.seed ?? 'granary';
  const layerCount = opts.layers ?? 2;
  const extraBytes = opts.extraBytes ?? 0;
  const platforms =
    opts.platforms ??
    (opts.multiArch ? [{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux', variant: 'v8' }] : [{ architecture: 'amd64', os: 'linux' }]);
  if (platforms.length === 0) throw new Error('writeOciLayout: no platforms');

  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const written: string[] = [];
  const imageOpts = { layers: layerCount, seed, extraBytes, annotations: opts.annotations };

  let top: OciLayout['top'];
  let index: LayoutBlob | undefined;
  const images: LayoutImage[] = [];
  if (opts.multiArch) {
    for (const p of platforms) images.push(await writeImage(dir, p, imageOpts, written));
    const idx = {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: images.map((img) => ({
        mediaType: OCI_MANIFEST,
        digest: img.manifest.digest,
        size: img.manifest.size,
        platform: img.platform,
      })),
    };
    index = await putBlob(dir, Buffer.from(JSON.stringify(idx)), written);
    top = { ...index, mediaType: OCI_INDEX };
  } else {
    images.push(await writeImage(dir, platforms[0], imageOpts, written));
    top = { ...images[0].manifest, mediaType: OCI_MANIFEST };
  }

  const indexPath = join(dir, 'index.json');
  type Entry = { mediaType: string; digest: string; size: number; annotations?: Record<string, string> };
  let layoutIndex: { schemaVersion: number; mediaType?: string; manifests: Entry[] } = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [],
  };
  if (existsSync(indexPath)) layoutIndex = JSON.parse(await readFile(indexPath, 'utf8'));
  layoutIndex.manifests = layoutIndex.manifests.filter((m) => m.annotations?.[REF_NAME] !== tag);
  layoutIndex.manifests.push({ mediaType: top.mediaType, digest: top.digest, size: top.size, annotations: { [REF_NAME]: tag } });
  await writeFile(indexPath, JSON.stringify(layoutIndex));

  return { dir, tag, ref: `oci:${dir}:${tag}`, top, images, index, blobs: [...new Set(written)] };
}
