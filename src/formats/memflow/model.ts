/**
 * memflow-registry's JSON models (MEMFLOW-REGISTRY-API.md c.3) rebuilt from Granary asset metadata, and its query
 * semantics (c.5) — with the filter-before-skip fix. A memflow file is the generic asset `memflow/<sha256 hex>`.
 */
import type { Asset } from '../../meta/assets.ts';
import type { Arch, MemflowFileType, PluginDescriptorJson, PluginKind } from '../../introspect/index.ts';

export const PATH_PREFIX = 'memflow/';
export const DIGEST = /^[0-9a-f]{64}$/;

export interface PluginVariant {
  digest: string;
  signature: string;
  created_at: string;
  descriptor: PluginDescriptorJson;
}

export interface PluginMetadata {
  digest: string;
  signature: string;
  created_at: string;
  descriptors: PluginDescriptorJson[];
}

interface StoredPlugin {
  name: string;
  version: string;
  description: string;
  plugin_version: number;
  kind: PluginKind;
  export_name: string;
  architecture: string | null;
}

/** chrono's NaiveDateTime as serde writes it: UTC, no zone suffix. */
export function naiveUtc(iso: string): string {
  return iso.replace(/Z$/, '').replace(/\+00:00$/, '');
}

function archOf(a: string | null): Arch {
  if (a === 'x86' || a === 'x86_64' || a === 'arm' || a === 'arm64') return a;
  const m = /^unknown:(\d+)$/.exec(a ?? '');
  return { unknown: m ? Number(m[1]) : 0 };
}

export function digestOf(a: Asset): string {
  return a.digest.replace(/^sha256:/, '');
}

export function descriptorsOf(a: Asset): PluginDescriptorJson[] {
  const plugins = Array.isArray(a.metadata.plugins) ? (a.metadata.plugins as StoredPlugin[]) : [];
  const fileType = a.metadata.file_type as MemflowFileType;
  return plugins.map((p) => ({
    plugin_kind: p.kind,
    export_name: p.export_name,
    file_type: fileType,
    architecture: archOf(p.architecture),
    plugin_version: p.plugin_version,
    name: p.name,
    version: p.version,
    description: p.description,
  }));
}

export function metadataOf(a: Asset): PluginMetadata {
  return {
    digest: digestOf(a),
    signature: typeof a.metadata.signature === 'string' ? a.metadata.signature : '',
    created_at: naiveUtc(a.createdAt),
    descriptors: descriptorsOf(a),
  };
}

/** One variant per descriptor, highest ABI of the file's first descriptor first, then newest (memflow's index order). */
export function variantsOf(assets: Asset[]): PluginVariant[] {
  const files = assets
    .map((a) => ({ a, ds: descriptorsOf(a) }))
    .filter((f) => f.ds.length > 0)
    .sort((x, y) => y.ds[0].plugin_version - x.ds[0].plugin_version || (x.a.createdAt < y.a.createdAt ? 1 : x.a.createdAt > y.a.createdAt ? -1 : y.a.id - x.a.id));
  const out: PluginVariant[] = [];
  for (const { a, ds } of files) {
    const m = metadataOf(a);
    for (const d of ds) out.push({ digest: m.digest, signature: m.signature, created_at: m.created_at, descriptor: d });
  }
  return out;
}

export interface VariantQuery {
  version?: string;
  memflow_plugin_version?: number;
  file_type?: MemflowFileType;
  architecture?: string;
  skip?: number;
  limit?: number;
}

export const DEFAULT_LIMIT = 5;
export const MAX_LIMIT = 50;

/** `GET /plugins/{name}`: filters (AND), then skip, then take min(limit ?? 5, 50). */
export function queryVariants(all: PluginVariant[], name: string, q: VariantQuery): PluginVariant[] {
  const skip = q.skip ?? 0;
  const limit = Math.min(q.limit ?? DEFAULT_LIMIT, MAX_LIMIT);
  return all
    .filter((v) => v.descriptor.name === name)
    .filter((v) => q.version === undefined || v.descriptor.version === q.version || (q.version.length > 0 && q.version.length <= 64 && v.digest.startsWith(q.version)))
    .filter((v) => q.memflow_plugin_version === undefined || v.descriptor.plugin_version === q.memflow_plugin_version)
    .filter((v) => q.file_type === undefined || v.descriptor.file_type === q.file_type)
    .filter((v) => q.architecture === undefined || v.descriptor.architecture === q.architecture)
    .slice(skip, skip + limit);
}

/** `GET /plugins`: one entry per name, sorted by name, with the description of its first (best) variant. */
export function pluginList(all: PluginVariant[]): { name: string; description: string }[] {
  const seen = new Map<string, string>();
  for (const v of all) if (!seen.has(v.descriptor.name)) seen.set(v.descriptor.name, v.descriptor.description);
  return [...seen].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, description]) => ({ name, description }));
}
