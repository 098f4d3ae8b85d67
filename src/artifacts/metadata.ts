/**
 * Typed artifact metadata: what an uploader says (`X-Granary-Meta-<Key>` headers), what introspection finds in the
 * file, and the scalar subset echoed back as headers on GET/HEAD. One vocabulary for the generic, memflow and
 * management routes, so `/api/v1/…?meta.<k>=<v>` and `latest` work on assets however they arrived.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { InspectResult } from '../introspect/index.ts';
import type { Arch } from '../introspect/index.ts';
import { GranaryError } from '../server/errors.ts';

export const META_HEADER_PREFIX = 'x-granary-meta-';
export const SIGNATURE_HEADER = 'x-granary-signature';

/** Keys only the server writes (signature outcome); an uploader sending one is refused. */
export const RESERVED_KEYS: ReadonlySet<string> = new Set(['signature', 'signature_key', 'signature_algorithm', 'signature_verified', 'inspect_error']);

const KEY = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const MAX_VALUE = 1024;
const MAX_KEYS = 64;

/** `X-Granary-Meta-<Key>: <value>` → `{ <key lower-cased>: '<value>' }` (strings; at most 64 keys of 1 KiB values). */
export function metadataFromHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, raw] of Object.entries(headers)) {
    if (!name.startsWith(META_HEADER_PREFIX) || raw === undefined) continue;
    const key = name.slice(META_HEADER_PREFIX.length).toLowerCase();
    if (!KEY.test(key)) throw new GranaryError('BAD_REQUEST', `metadata key ${JSON.stringify(key)} must match ${KEY.source}`);
    if (RESERVED_KEYS.has(key)) throw new GranaryError('BAD_REQUEST', `metadata key ${key} is set by the server, not by the uploader`);
    const value = Array.isArray(raw) ? raw.join(', ') : raw;
    if (value.length > MAX_VALUE) throw new GranaryError('BAD_REQUEST', `metadata value of ${key} is longer than ${MAX_VALUE} characters`);
    out[key] = value;
  }
  if (Object.keys(out).length > MAX_KEYS) throw new GranaryError('BAD_REQUEST', `at most ${MAX_KEYS} metadata headers`);
  return out;
}

/** memflow's architecture enum as one string: `x86_64`, or `unknown:<machine>`. */
export function archName(a: Arch | null): string | null {
  if (a === null) return null;
  return typeof a === 'string' ? a : `unknown:${a.unknown}`;
}

const FILE_TYPE = { elf: 'elf', pe: 'pe', macho: 'mach', 'macho-fat': 'mach', tar: 'tar' } as const;
const OS = { elf: 'linux', pe: 'windows', macho: 'macos', 'macho-fat': 'macos' } as const;

/** The metadata keys introspection fills in (see docs/formats/generic.md for the list). */
export function extractedMetadata(r: InspectResult): Record<string, unknown> {
  const m: Record<string, unknown> = { file_type: FILE_TYPE[r.format] };
  if (r.format !== 'tar') m.os = OS[r.format];
  const arch = archName(r.arch) ?? (r.slices?.length ? r.slices.map((x) => archName(x.arch)).join(',') : null);
  if (arch !== null) m.arch = r.ebpf ? 'bpf' : arch;
  if (r.bits !== null) m.bits = r.bits;
  if (r.endianness !== null) m.endianness = r.endianness;
  if (r.fileKind !== null) m.file_kind = r.fileKind;
  if (r.memflow?.length) {
    m.plugins = r.memflow.map((d) => ({
      name: d.name,
      version: d.version,
      description: d.description,
      plugin_version: d.pluginVersion,
      kind: d.pluginKind,
      export_name: d.exportName,
      architecture: archName(d.architecture),
    }));
    // The first descriptor names the file, as memflow-registry orders by the first descriptor's ABI.
    const first = r.memflow[0];
    Object.assign(m, { type: 'memflow-plugin', name: first.name, version: first.version, abi: first.pluginVersion, plugin_kind: first.pluginKind });
  }
  const ebpf = r.ebpf ?? (r.bundle?.entries.find((e) => e.object)?.object ?? undefined);
  if (ebpf) {
    m.type = r.ebpf ? 'ebpf' : 'ebpf-bundle';
    m.ebpf = {
      programs: ebpf.programs.map((p) => ({ name: p.name, section: p.section, type: p.progType, kind: p.kind })),
      maps: ebpf.maps.map((x) => ({ name: x.name, type: x.type })),
      license: ebpf.license,
      kernel_version: ebpf.kernelVersionString,
      btf: ebpf.btf,
      core_relocations: ebpf.coreRelocations,
    };
    if (ebpf.license !== null) m.license = ebpf.license;
    if (ebpf.kernelVersionString !== null) m.kernel_version = ebpf.kernelVersionString;
  }
  if (r.bundle) m.files = r.bundle.entries.length;
  return m;
}

const HEADER_SAFE = /^[\x20-\x7e]*$/;

/**
 * Response headers for an asset: `X-Granary-Meta-<key>` for each scalar value that is printable ASCII (others, and
 * arrays/objects such as `plugins`, are only in the JSON API), and `X-Granary-Signature` when one is stored.
 */
export function metadataHeaders(metadata: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (k === 'signature') continue;
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') continue;
    const text = String(v);
    if (KEY.test(k) && HEADER_SAFE.test(text)) out[META_HEADER_PREFIX + k] = text;
  }
  if (typeof metadata.signature === 'string' && HEADER_SAFE.test(metadata.signature)) out[SIGNATURE_HEADER] = metadata.signature;
  return out;
}
