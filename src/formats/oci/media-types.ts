/**
 * Media types of the OCI image-spec v1.1 and of Docker's image manifest v2 schema 2, and small predicates
 * over them. Plain string constants (no enums: type stripping).
 */

export const MT = {
  // OCI image-spec v1.1
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_CONFIG: 'application/vnd.oci.image.config.v1+json',
  OCI_LAYER: 'application/vnd.oci.image.layer.v1.tar',
  OCI_LAYER_GZIP: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OCI_LAYER_ZSTD: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OCI_LAYER_NONDIST: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OCI_LAYER_NONDIST_GZIP: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OCI_LAYER_NONDIST_ZSTD: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  OCI_EMPTY: 'application/vnd.oci.empty.v1+json',
  OCI_LAYOUT_HEADER: 'application/vnd.oci.layout.header.v1+json',
  /** The short-lived artifact manifest of image-spec 1.1.0-rc1/rc2, removed before 1.1.0 (PR #999). Rejected. */
  OCI_ARTIFACT_MANIFEST: 'application/vnd.oci.artifact.manifest.v1+json',

  // Docker image manifest v2, schema 2 (distribution/distribution docs/spec/manifest-v2-2.md)
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_MANIFEST_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_CONFIG: 'application/vnd.docker.container.image.v1+json',
  DOCKER_PLUGIN_CONFIG: 'application/vnd.docker.plugin.v1+json',
  DOCKER_LAYER: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DOCKER_FOREIGN_LAYER: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',

  // Docker schema 1: never accepted.
  DOCKER_SCHEMA1: 'application/vnd.docker.distribution.manifest.v1+json',
  DOCKER_SCHEMA1_SIGNED: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** The four manifest types Granary stores and serves. */
export const MANIFEST_MEDIA_TYPES = [MT.OCI_MANIFEST, MT.OCI_INDEX, MT.DOCKER_MANIFEST, MT.DOCKER_MANIFEST_LIST] as const;
export type ManifestMediaType = (typeof MANIFEST_MEDIA_TYPES)[number];

export function isManifestMediaType(mt: string | undefined): mt is ManifestMediaType {
  return mt !== undefined && (MANIFEST_MEDIA_TYPES as readonly string[]).includes(mt);
}

export function isIndexMediaType(mt: string | undefined): boolean {
  return mt === MT.OCI_INDEX || mt === MT.DOCKER_MANIFEST_LIST;
}

export function isSchema1MediaType(mt: string | undefined): boolean {
  return mt === MT.DOCKER_SCHEMA1 || mt === MT.DOCKER_SCHEMA1_SIGNED;
}

export function isOciMediaType(mt: string | undefined): boolean {
  return mt === MT.OCI_MANIFEST || mt === MT.OCI_INDEX;
}

/**
 * RFC 6838 §4.2 `type-name "/" subtype-name`, each a restricted-name (1–127 chars, first alphanumeric, then
 * `! # $ & - ^ _ . +`), no parameters. Image-spec: descriptor and artifactType values MUST comply.
 */
const RFC6838_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

export function isValidMediaType(mt: unknown): mt is string {
  return typeof mt === 'string' && RFC6838_RE.test(mt);
}

/**
 * The bare media type of a Content-Type header: parameters dropped (the spec says the registry SHOULD ignore
 * them), whitespace trimmed, lower-cased (media types are case-insensitive). '' when absent.
 */
export function bareMediaType(contentType: string | undefined): string {
  if (contentType === undefined) return '';
  const semi = contentType.indexOf(';');
  return (semi >= 0 ? contentType.slice(0, semi) : contentType).trim().toLowerCase();
}
