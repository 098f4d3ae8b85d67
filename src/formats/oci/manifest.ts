/**
 * Strict parsing of pushed manifests (OCI image manifest / index v1.1, Docker v2 schema 2 manifest / list), the
 * referrers descriptor rules; re-exports the descriptor type/validator (descriptor.ts) and Accept negotiation
 * (negotiate.ts) so routes import one module. No I/O: the route checks that the
 * blobs and child manifests returned here exist, and answers MANIFEST_BLOB_UNKNOWN for each one that does not.
 *
 * Specs: image-spec v1.1 manifest.md, image-index.md, descriptor.md; distribution-spec v1.1 "Pushing Manifests",
 * "Listing Referrers"; Docker "Image Manifest Version 2, Schema 2".
 */
import {
  type Descriptor,
  descriptorArray,
  digestOf,
  isPlainObject,
  manifestInvalid,
  parseDescriptor,
  stringMap,
} from './descriptor.ts';
import { OciError } from './errors.ts';
import {
  MT,
  bareMediaType,
  isManifestMediaType,
  isSchema1MediaType,
  isValidMediaType,
  type ManifestMediaType,
} from './media-types.ts';

export { digestOf, parseDescriptor } from './descriptor.ts';
export type { Descriptor, Platform } from './descriptor.ts';
export { negotiate, parseAccept } from './negotiate.ts';
export type { AcceptEntry, Negotiation } from './negotiate.ts';

/** The spec: registries "SHOULD expect to be able to support manifest pushes of at least 4 megabytes". */
export const MANIFEST_MAX_BYTES = 4 * 1024 * 1024;

/** Digest and size of `{}`, the OCI empty descriptor's content (manifest.md "Guidance for an Empty Descriptor"). */
export const EMPTY_JSON_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';
export const EMPTY_JSON_SIZE = 2;

export interface ParsedManifest {
  /** The type to store and to serve back as Content-Type. */
  mediaType: ManifestMediaType;
  kind: 'image' | 'index';
  /** Image manifests only. */
  config?: Descriptor;
  /** Image manifests: the layers, in order. Empty for indexes. */
  layers: Descriptor[];
  /** Indexes: the child descriptors. Empty for image manifests. */
  manifests: Descriptor[];
  /** OCI types only (ignored on Docker types, which have no such field). Need not exist (spec MUST). */
  subject?: Descriptor;
  /** OCI types only. */
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface ParseManifestOptions {
  /** Reject bigger bodies with MANIFEST_INVALID + status 413. Default MANIFEST_MAX_BYTES. */
  maxBytes?: number;
  /**
   * manifest.md: artifactType "MUST be set when config.mediaType is set to the empty value". Default true;
   * turn off only for a proxy that must store whatever upstream serves.
   */
  requireArtifactTypeForEmptyConfig?: boolean;
}

/** Content-Types that say nothing about the manifest kind; the body's `mediaType` decides then. */
const GENERIC_CONTENT_TYPES = new Set(['', 'application/json', 'application/octet-stream', 'text/plain']);

const SCHEMA1_MESSAGE =
  'manifest invalid: Docker schema 1 manifests are not supported; push an OCI or Docker schema 2 manifest ' +
  '(e.g. skopeo copy --format oci or --format v2s2)';

function decodeJson(bytes: Buffer): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw manifestInvalid('', 'body is not valid UTF-8');
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw manifestInvalid('', `body is not JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(doc)) throw manifestInvalid('', 'body must be a JSON object');
  return doc;
}

/**
 * Decides the manifest's media type from the Content-Type header and the body's `mediaType` field.
 * Spec ("Pushing Manifests"): if the manifest has a `mediaType`, clients MUST send it as Content-Type; the
 * registry SHOULD ignore Content-Type parameters. Docker types REQUIRE the body field (Docker spec; Distribution
 * rejects without it). With a missing/generic Content-Type (curl, some scripts) the body decides; an OCI body
 * without `mediaType` is then recognised by shape (`config` → manifest, `manifests` → index).
 */
function resolveMediaType(doc: Record<string, unknown>, contentType: string | undefined): ManifestMediaType {
  const ct = bareMediaType(contentType);
  const bodyMt = doc.mediaType;
  if (bodyMt !== undefined && typeof bodyMt !== 'string') throw manifestInvalid('mediaType', 'must be a string');
  if (isSchema1MediaType(ct) || isSchema1MediaType(bodyMt) || doc.schemaVersion === 1) {
    throw new OciError('MANIFEST_INVALID', SCHEMA1_MESSAGE, { mediaType: bodyMt ?? ct, schemaVersion: doc.schemaVersion });
  }
  if (ct === MT.OCI_ARTIFACT_MANIFEST || bodyMt === MT.OCI_ARTIFACT_MANIFEST) {
    throw manifestInvalid('mediaType', `${MT.OCI_ARTIFACT_MANIFEST} was removed before image-spec 1.1.0; use an image manifest with artifactType`);
  }
  let mt: string;
  if (GENERIC_CONTENT_TYPES.has(ct)) {
    if (bodyMt !== undefined) mt = bodyMt;
    else if (doc.config !== undefined) mt = MT.OCI_MANIFEST;
    else if (doc.manifests !== undefined) mt = MT.OCI_INDEX;
    else throw manifestInvalid('mediaType', 'cannot tell the manifest type: no Content-Type, no mediaType field');
  } else {
    if (bodyMt !== undefined && bodyMt !== ct) {
      throw new OciError('MANIFEST_INVALID', `manifest invalid: mediaType "${bodyMt}" does not match Content-Type "${ct}"`, {
        field: 'mediaType',
        mediaType: bodyMt,
        contentType: ct,
      });
    }
    mt = ct;
  }
  if (!isManifestMediaType(mt)) {
    throw new OciError('MANIFEST_INVALID', `manifest invalid: unsupported manifest media type "${mt}"`, { mediaType: mt });
  }
  if ((mt === MT.DOCKER_MANIFEST || mt === MT.DOCKER_MANIFEST_LIST) && bodyMt === undefined) {
    throw manifestInvalid('mediaType', `is required for ${mt}`);
  }
  return mt;
}

/**
 * Parses and validates a pushed manifest. Throws OciError MANIFEST_INVALID (400; 413 when too large) with a
 * `detail` naming the field. Unknown top-level fields are allowed (forward compatibility), except that an image
 * manifest may not carry `manifests` and an index may not carry `config`/`layers`: such "ambiguous manifests"
 * are read differently by different clients (CVE-2021-41190; Distribution and containerd reject
 * them too).
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined, opts: ParseManifestOptions = {}): ParsedManifest {
  const maxBytes = opts.maxBytes ?? MANIFEST_MAX_BYTES;
  if (bytes.length > maxBytes) {
    throw new OciError('MANIFEST_INVALID', `manifest invalid: larger than ${maxBytes} bytes`, { size: bytes.length, limit: maxBytes }, 413);
  }
  const doc = decodeJson(bytes);
  const mediaType = resolveMediaType(doc, contentType);
  if (doc.schemaVersion !== 2) throw manifestInvalid('schemaVersion', 'must be 2');
  const isOci = mediaType === MT.OCI_MANIFEST || mediaType === MT.OCI_INDEX;
  const kind = mediaType === MT.OCI_MANIFEST || mediaType === MT.DOCKER_MANIFEST ? 'image' : 'index';

  const out: ParsedManifest = { mediaType, kind, layers: [], manifests: [] };
  if (kind === 'image') {
    if (doc.manifests !== undefined) throw manifestInvalid('manifests', 'an image manifest must not have "manifests" (expected manifest but found index)');
    if (doc.config === undefined) throw manifestInvalid('config', 'is required');
    out.config = parseDescriptor(doc.config, 'config');
    if (doc.layers === undefined) throw manifestInvalid('layers', 'is required');
    out.layers = descriptorArray(doc.layers, 'layers');
  } else {
    if (doc.config !== undefined || doc.layers !== undefined) {
      throw manifestInvalid(doc.config !== undefined ? 'config' : 'layers', 'an index must not have "config" or "layers" (expected index but found manifest)');
    }
    if (doc.manifests === undefined) throw manifestInvalid('manifests', 'is required');
    out.manifests = descriptorArray(doc.manifests, 'manifests');
  }
  if (isOci) {
    if (doc.artifactType !== undefined) {
      if (!isValidMediaType(doc.artifactType)) throw manifestInvalid('artifactType', 'must be an RFC 6838 media type');
      out.artifactType = doc.artifactType;
    }
    if (doc.subject !== undefined) out.subject = parseDescriptor(doc.subject, 'subject');
    if (
      kind === 'image' &&
      (opts.requireArtifactTypeForEmptyConfig ?? true) &&
      out.config?.mediaType === MT.OCI_EMPTY &&
      out.artifactType === undefined
    ) {
      throw manifestInvalid('artifactType', `is required when config.mediaType is ${MT.OCI_EMPTY}`);
    }
  }
  if (doc.annotations !== undefined) out.annotations = stringMap(doc.annotations, 'annotations');
  return out;
}

function uniqueByDigest(list: Descriptor[]): Descriptor[] {
  const seen = new Set<string>();
  const out: Descriptor[] = [];
  for (const d of list) {
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    out.push(d);
  }
  return out;
}

/**
 * Blobs that must exist in the repository before the manifest is accepted (each missing one →
 * MANIFEST_BLOB_UNKNOWN with `detail: { digest }`): the config and the layers, plus index children whose type is
 * not a manifest type (an index may point at anything; image-index.md says unknown types MUST NOT error).
 * Descriptors with `urls` (Docker foreign layers, OCI non-distributable layers) are skipped: their content lives
 * elsewhere, as in Distribution. The empty descriptor `{}` is included; a route may create it on the fly.
 */
export function requiredBlobs(m: ParsedManifest): Descriptor[] {
  const list = [...(m.config ? [m.config] : []), ...m.layers, ...m.manifests.filter((d) => !isManifestMediaType(d.mediaType))];
  return uniqueByDigest(list.filter((d) => d.urls === undefined || d.urls.length === 0));
}

/** Child manifests (of an index) that must exist in the repository. The subject never has to exist. */
export function requiredManifests(m: ParsedManifest): Descriptor[] {
  return uniqueByDigest(m.manifests.filter((d) => isManifestMediaType(d.mediaType)));
}

/**
 * The `artifactType` a referrers list shows for this manifest (distribution-spec "Listing Referrers"): the
 * manifest's `artifactType`; else, for an image manifest, `config.mediaType`; else (an index) none.
 */
export function referrerArtifactType(m: ParsedManifest): string | undefined {
  if (m.artifactType !== undefined && m.artifactType !== '') return m.artifactType;
  if (m.kind === 'image') return m.config?.mediaType;
  return undefined;
}

/** The descriptor of a referrer, as listed by GET /v2/<name>/referrers/<subject>: with its annotations. */
export function referrerDescriptor(m: ParsedManifest, digest: string, size: number): Descriptor {
  const d: Descriptor = { mediaType: m.mediaType, digest, size };
  const at = referrerArtifactType(m);
  if (at !== undefined) d.artifactType = at;
  if (m.annotations !== undefined && Object.keys(m.annotations).length > 0) d.annotations = { ...m.annotations };
  return d;
}

/**
 * PUT /manifests/<digest>: the body must hash to the reference, computed with the reference's algorithm.
 * Throws DIGEST_INVALID (400) otherwise.
 */
export function assertManifestDigest(bytes: Buffer, referenceDigest: string): void {
  const alg = referenceDigest.startsWith('sha512:') ? 'sha512' : 'sha256';
  const actual = digestOf(bytes, alg);
  if (actual !== referenceDigest) {
    throw new OciError('DIGEST_INVALID', 'manifest digest does not match the reference', { digest: referenceDigest, actual });
  }
}
