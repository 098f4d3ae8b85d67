/**
 * What happens to a typed artifact between "bytes stored" and "asset bound": introspection of the stored blob (only
 * when it is small enough to read back into memory) and the repository's signature policy. Used as the
 * `enrich` step of `storeAsset` by the generic PUT and the memflow-registry POST.
 */
import type { Services } from '../server/services.ts';
import type { RepositoryRecord } from '../meta/repos.ts';
import { listTrustedKeys } from '../meta/trusted-keys.ts';
import { inspect, isIntrospectError, UnsupportedFormatError, type InspectResult } from '../introspect/index.ts';
import { checkUpload, parsePublicKey, type SignatureMode, type SignaturePolicy, type TrustedKey, type LowSPolicy } from '../trust/index.ts';
import { GranaryError } from '../server/errors.ts';
import { extractedMetadata } from './metadata.ts';

/** Files up to this size are read back from the blob store and inspected; larger ones are stored without it. */
export const INSPECT_MAX_BYTES = 64 * 1024 * 1024;

/** The generic repository options this module reads (validated by the generic plug-in's optionsSchema). */
export interface ArtifactOptions {
  signatures?: SignatureMode;
  lowS?: LowSPolicy;
  maxUploadBytes?: number;
}

export function artifactOptions(repo: RepositoryRecord): ArtifactOptions {
  return (repo.config.options ?? {}) as ArtifactOptions;
}

export function signaturePolicy(repo: RepositoryRecord): SignaturePolicy {
  const o = artifactOptions(repo);
  return { mode: o.signatures ?? 'optional', lowS: o.lowS ?? 'reject' };
}

export async function trustedKeysOf(s: Services, repo: RepositoryRecord): Promise<TrustedKey[]> {
  return (await listTrustedKeys(s.meta.db, repo.id)).map((k) => ({ id: k.id, key: parsePublicKey(k.publicKey) }));
}

async function readBlob(s: Services, digest: string, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await s.blobs.open(digest)) chunks.push(c as Buffer);
  return Buffer.concat(chunks, size);
}

export interface EnrichOptions {
  /** The signature text as received (hex or base64 DER), if any. */
  signature?: string | null;
  /** Refuse the upload unless it is a memflow plug-in (memflow POST). Otherwise unparsable files are just not described. */
  requireMemflow?: boolean;
}

export interface Enriched {
  metadata: Record<string, unknown>;
  inspected: InspectResult | null;
}

/**
 * Inspects the stored blob (or `bytes`, when the caller already holds them) and applies the signature policy; returns the metadata to record. Throws a 400
 * GranaryError for a refused signature, or (with `requireMemflow`) for a file that is not a memflow plug-in.
 */
export async function enrichArtifact(
  s: Services,
  repo: RepositoryRecord,
  blob: { digest: string; size: number; bytes?: Buffer },
  o: EnrichOptions,
): Promise<Enriched> {
  const metadata: Record<string, unknown> = {};
  let inspected: InspectResult | null = null;
  if (blob.size <= INSPECT_MAX_BYTES) {
    try {
      inspected = inspect(blob.bytes ?? (await readBlob(s, blob.digest, blob.size)), o.requireMemflow ? { require: 'memflow' } : {});
      Object.assign(metadata, extractedMetadata(inspected));
    } catch (e) {
      if (!isIntrospectError(e)) throw e;
      if (o.requireMemflow) throw new GranaryError('BAD_REQUEST', `Memflow error: ${e.message}`, { cause: e });
      if (!(e instanceof UnsupportedFormatError)) metadata.inspect_error = `${e.code}: ${e.message}`;
    }
  } else if (o.requireMemflow) {
    throw new GranaryError('TOO_LARGE', `plug-ins larger than ${INSPECT_MAX_BYTES} bytes cannot be inspected`);
  }

  const check = await checkUpload(signaturePolicy(repo), await trustedKeysOf(s, repo), { digest: blob.digest }, o.signature ?? null);
  if (!check.accepted) throw new GranaryError('BAD_REQUEST', `Signature error: ${check.reason ?? check.code}`, { details: { code: check.code } });
  if (check.signature !== undefined) {
    metadata.signature = check.signature;
    metadata.signature_verified = check.verified;
    if (check.keyId !== undefined) metadata.signature_key = check.keyId;
    if (check.algorithm !== undefined) metadata.signature_algorithm = check.algorithm;
  }
  return { metadata, inspected };
}
