/**
 * OCI content descriptors (image-spec v1.1 descriptor.md): the type, the strict validator every manifest field
 * goes through, and the digest of raw bytes. Shared by manifest.ts; errors are MANIFEST_INVALID naming the field.
 */
import { createHash } from 'node:crypto';
import { OciError } from './errors.ts';
import { isValidDigest, isWellFormedButUnsupportedDigest } from './names.ts';
import { isValidMediaType } from './media-types.ts';

export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  features?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  /** Base64 of the content; verified against digest and size at parse time. */
  data?: string;
  artifactType?: string;
  platform?: Platform;
}

/** MANIFEST_INVALID naming the failing field, e.g. `layers[1].size`. */
export function manifestInvalid(field: string, reason: string): OciError {
  const where = field === '' ? '' : `${field}: `;
  return new OciError('MANIFEST_INVALID', `manifest invalid: ${where}${reason}`, field === '' ? { reason } : { field, reason });
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function stringMap(v: unknown, field: string): Record<string, string> {
  if (!isPlainObject(v)) throw manifestInvalid(field, 'must be an object of strings');
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw manifestInvalid(`${field}.${k}`, 'annotation values must be strings');
  }
  return { ...(v as Record<string, string>) };
}

function stringArray(v: unknown, field: string): string[] {
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw manifestInvalid(field, 'must be an array of strings');
  return [...(v as string[])];
}

function parsePlatform(v: unknown, field: string): Platform {
  if (!isPlainObject(v)) throw manifestInvalid(field, 'must be an object');
  if (typeof v.architecture !== 'string' || v.architecture === '') throw manifestInvalid(`${field}.architecture`, 'is required');
  if (typeof v.os !== 'string' || v.os === '') throw manifestInvalid(`${field}.os`, 'is required');
  const p: Platform = { architecture: v.architecture, os: v.os };
  if (v['os.version'] !== undefined) {
    if (typeof v['os.version'] !== 'string') throw manifestInvalid(`${field}.os.version`, 'must be a string');
    p['os.version'] = v['os.version'];
  }
  if (v['os.features'] !== undefined) p['os.features'] = stringArray(v['os.features'], `${field}.os.features`);
  if (v.variant !== undefined) {
    if (typeof v.variant !== 'string') throw manifestInvalid(`${field}.variant`, 'must be a string');
    p.variant = v.variant;
  }
  if (v.features !== undefined) p.features = stringArray(v.features, `${field}.features`);
  return p;
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Validates one descriptor (descriptor.md) and returns a copy holding only the known fields. */
export function parseDescriptor(v: unknown, field: string): Descriptor {
  if (!isPlainObject(v)) throw manifestInvalid(field, 'must be a descriptor object');
  if (!isValidMediaType(v.mediaType)) throw manifestInvalid(`${field}.mediaType`, 'must be an RFC 6838 media type');
  if (typeof v.digest !== 'string') throw manifestInvalid(`${field}.digest`, 'is required');
  if (!isValidDigest(v.digest)) {
    const why = isWellFormedButUnsupportedDigest(v.digest)
      ? 'unsupported digest algorithm (sha256 and sha512 with lower-case hex only)'
      : 'malformed digest';
    throw manifestInvalid(`${field}.digest`, why);
  }
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) {
    throw manifestInvalid(`${field}.size`, 'must be a non-negative integer');
  }
  const d: Descriptor = { mediaType: v.mediaType, digest: v.digest, size: v.size };
  if (v.urls !== undefined) {
    d.urls = stringArray(v.urls, `${field}.urls`);
    if (d.urls.some((u) => !URL.canParse(u))) throw manifestInvalid(`${field}.urls`, 'entries must be URLs (RFC 3986)');
  }
  if (v.annotations !== undefined) d.annotations = stringMap(v.annotations, `${field}.annotations`);
  if (v.artifactType !== undefined) {
    if (!isValidMediaType(v.artifactType)) throw manifestInvalid(`${field}.artifactType`, 'must be an RFC 6838 media type');
    d.artifactType = v.artifactType;
  }
  if (v.platform !== undefined) d.platform = parsePlatform(v.platform, `${field}.platform`);
  if (v.data !== undefined) {
    // descriptor.md "Embedded Content": the decoded data MUST be identical to the referenced content.
    if (typeof v.data !== 'string' || !BASE64_RE.test(v.data)) throw manifestInvalid(`${field}.data`, 'must be base64 (RFC 4648)');
    const bytes = Buffer.from(v.data, 'base64');
    if (bytes.length !== d.size) throw manifestInvalid(`${field}.data`, 'decoded length does not match size');
    if (digestOf(bytes, d.digest.startsWith('sha512:') ? 'sha512' : 'sha256') !== d.digest) {
      throw manifestInvalid(`${field}.data`, 'decoded content does not match digest');
    }
    d.data = v.data;
  }
  return d;
}

export function descriptorArray(v: unknown, field: string): Descriptor[] {
  if (!Array.isArray(v)) throw manifestInvalid(field, 'must be an array of descriptors');
  return v.map((item, i) => parseDescriptor(item, `${field}[${i}]`));
}

/** `<alg>:<hex>` of the exact bytes (the registry MUST store and hash the bytes as pushed). */
export function digestOf(bytes: Buffer | Uint8Array, algorithm: 'sha256' | 'sha512' = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
