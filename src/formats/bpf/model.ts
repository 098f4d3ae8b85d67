/**
 * The eBPF-registry JSON model rebuilt from Granary asset metadata. An artifact is the generic asset
 * `bpf/<name>/<version>/<sha256 hex>`; its id is that hex (the blob digest without `sha256:`), stable across
 * repositories and re-uploads. Host associations are tags of scope `host:<host_id>`, name and target = the id.
 */
import type { Asset } from '../../meta/assets.ts';

export const PATH_PREFIX = 'bpf/';
export const ID = /^[0-9a-f]{64}$/;
export const HOST_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,254}$/;
/** Artifact names and versions become path segments. */
export const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
export const hostScope = (host: string): string => `host:${host}`;

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

export function idOf(a: Asset): string {
  return a.digest.replace(/^sha256:/, '');
}

export function artifactPath(name: string, version: string, id: string): string {
  return `${PATH_PREFIX}${name}/${version}/${id}`;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

interface EbpfMeta {
  programs?: unknown[];
  maps?: unknown[];
  license?: string | null;
  kernel_version?: string | null;
  btf?: boolean;
  core_relocations?: number;
}

export interface ArtifactJson {
  id: string;
  name: string | null;
  version: string | null;
  description: string | null;
  type: string | null;
  architecture: string | null;
  kernel_version: string | null;
  tags: string[];
  metadata: Record<string, unknown>;
  digest: string;
  size: number;
  file_type: string | null;
  programs: unknown[];
  maps: unknown[];
  license: string | null;
  btf: boolean;
  core_relocations: number;
  object_kernel_version: string | null;
  signature: string | null;
  created_at: string;
  updated_at: string;
}

export function artifactOf(a: Asset): ArtifactJson {
  const m = a.metadata;
  const e = (m.ebpf ?? {}) as EbpfMeta;
  return {
    id: idOf(a),
    name: str(m.name),
    version: str(m.version),
    description: str(m.description),
    type: str(m.bpf_type) ?? str(m.type),
    architecture: str(m.architecture),
    kernel_version: str(m.kernel_version),
    tags: Array.isArray(m.tags) ? (m.tags as string[]) : [],
    metadata: (m.labels ?? {}) as Record<string, unknown>,
    digest: a.digest,
    size: a.size,
    file_type: str(m.type),
    programs: e.programs ?? [],
    maps: e.maps ?? [],
    license: e.license ?? null,
    btf: e.btf ?? false,
    core_relocations: e.core_relocations ?? 0,
    object_kernel_version: e.kernel_version ?? null,
    signature: str(m.signature),
    created_at: a.createdAt,
    updated_at: a.updatedAt,
  };
}

export interface SearchQuery {
  name?: string;
  type?: string;
  architecture?: string;
  kernel_version?: string;
  tag?: string;
}

/** Filters (AND, exact), newest first (created_at, then asset id). */
export function searchArtifacts(all: Asset[], q: SearchQuery): ArtifactJson[] {
  return all
    .map(artifactOf)
    .map((j, i) => ({ j, a: all[i] }))
    .filter(({ j }) => q.name === undefined || j.name === q.name)
    .filter(({ j }) => q.type === undefined || j.type === q.type)
    .filter(({ j }) => q.architecture === undefined || j.architecture === q.architecture)
    .filter(({ j }) => q.kernel_version === undefined || j.kernel_version === q.kernel_version)
    .filter(({ j }) => q.tag === undefined || j.tags.includes(q.tag))
    .sort((x, y) => (x.a.createdAt < y.a.createdAt ? 1 : x.a.createdAt > y.a.createdAt ? -1 : y.a.id - x.a.id))
    .map(({ j }) => j);
}
