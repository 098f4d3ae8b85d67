/**
 * Offline introspection of uploaded binaries — read, never loaded: what format, CPU, bitness and byte order a file
 * has, which memflow plugins it exports, and what an eBPF object or bundle contains. Pure functions over a Buffer.
 *
 * Cost bounds: callers pass a Buffer already capped by their upload limit (N bytes). Parsing is linear in N (every
 * table is checked to fit in the file before its loop runs, names are only decoded for symbols of interest) and
 * allocates O(limits), not O(N): section/segment arrays ≤ maxSections, program/map lists ≤ maxPrograms, BTF index ≤
 * maxBtfTypes numbers. Compressed bundles add at most `maxBundleBytes` of expanded tar (default 64 MiB) plus a zstd
 * window no larger than that. So peak memory ≈ N + maxBundleBytes (bundles) or N + a few MiB (everything else).
 */
import { describeEbpf, describeEbpfBundle, type EbpfBundleInfo, type EbpfObjectInfo } from './ebpf.ts';
import { EM_BPF, isElf, parseElf } from './elf.ts';
import { NoEbpfObjectsError, NoPluginsError, UnsupportedFormatError } from './errors.ts';
import { isFat, isMacho, parseFat, parseMacho } from './macho.ts';
import { scanMemflowPlugins, type PluginDescriptorInfo } from './memflow.ts';
import { isPe, parsePe } from './pe.ts';
import { hasUstarMagic, isGzip, isTar, isZstd } from './tar.ts';
import { resolveLimits, type Arch, type Bits, type Endianness, type IntrospectOptions } from './types.ts';

export * from './errors.ts';
export type { Arch, Bits, Endianness, IntrospectLimits, IntrospectOptions, MemflowFileType } from './types.ts';
export { DEFAULT_LIMITS } from './types.ts';
export { readMemflowPlugins, scanMemflowPlugins, toPluginDescriptorJson } from './memflow.ts';
export type { PluginDescriptorInfo, PluginDescriptorJson, PluginKind } from './memflow.ts';
export { inspectEbpfBundle, inspectEbpfObject, isEbpfElf } from './ebpf.ts';
export type { EbpfBundleEntry, EbpfBundleInfo, EbpfMap, EbpfObjectInfo, EbpfProgram } from './ebpf.ts';

export type BinaryFormat = 'elf' | 'pe' | 'macho' | 'macho-fat' | 'tar';

export interface FatSlice {
  offset: number;
  size: number;
  /** 'macho' for an image; 'other' for anything else (e.g. a static archive in a universal .a). */
  format: 'macho' | 'other';
  arch: Arch;
  cputype: number;
  bits: Bits | null;
  endianness: Endianness | null;
  fileKind: string | null;
}

export interface InspectResult {
  format: BinaryFormat;
  /** memflow's architecture enum; null for bundles and fat files (see `slices`). eBPF objects: `{ unknown: 247 }`. */
  arch: Arch | null;
  /** Raw machine id: ELF e_machine, PE COFF Machine, Mach-O cputype; null for bundles and fat files. */
  machine: number | null;
  bits: Bits | null;
  endianness: Endianness | null;
  /** ELF e_type ('dyn', 'exec', 'rel'…), PE 'dll' | 'exe', Mach-O filetype ('dylib', 'execute'…); null for bundles. */
  fileKind: string | null;
  /** Slices of a fat/universal Mach-O. */
  slices?: FatSlice[];
  /** memflow plugin descriptors, when the file exports any. */
  memflow?: PluginDescriptorInfo[];
  /** Description of an eBPF object (ELF with e_machine EM_BPF). */
  ebpf?: EbpfObjectInfo;
  /** Description of a tar bundle (compression, files, the eBPF objects among them). */
  bundle?: EbpfBundleInfo;
}

export interface InspectOptions extends IntrospectOptions {
  /** Refuse files that are not a memflow plugin (`NoPluginsError`) or carry no eBPF object (`NoEbpfObjectsError`). */
  require?: 'memflow' | 'ebpf';
}

/**
 * Describes a PE, ELF, (fat) Mach-O or tar bundle. Throws only `IntrospectError`s: `UnsupportedFormatError` for
 * anything else, `MalformedBinaryError` / `LimitExceededError` for hostile or broken input.
 */
export function inspect(buf: Buffer, opts: InspectOptions = {}): InspectResult {
  const limits = resolveLimits(opts);
  const result = describe(buf, opts, limits);
  if (opts.require === 'memflow' && !result.memflow) {
    throw new NoPluginsError(result.format === 'macho-fat' ? 'fat Mach-O' : result.format === 'macho' ? 'Mach-O' : result.format.toUpperCase());
  }
  if (opts.require === 'ebpf' && !result.ebpf && !result.bundle?.entries.some((e) => e.object !== undefined)) throw new NoEbpfObjectsError(`the ${result.format} file`);
  return result;
}

function describe(buf: Buffer, opts: IntrospectOptions, limits: ReturnType<typeof resolveLimits>): InspectResult {
  const withPlugins = (r: InspectResult): InspectResult => {
    const found = scanMemflowPlugins(buf, opts);
    return found.length > 0 ? { ...r, memflow: found } : r;
  };
  if (isElf(buf)) {
    const f = parseElf(buf, limits);
    const base: InspectResult = { format: 'elf', arch: f.arch, machine: f.machine, bits: f.bits, endianness: f.endianness, fileKind: f.elfType };
    if (f.machine === EM_BPF) return { ...base, ebpf: describeEbpf(f, limits) };
    return withPlugins(base);
  }
  if (hasUstarMagic(buf)) {
    return { format: 'tar', arch: null, machine: null, bits: null, endianness: null, fileKind: null, bundle: describeEbpfBundle(buf, limits) };
  }
  if (isPe(buf)) {
    const f = parsePe(buf, limits);
    return withPlugins({ format: 'pe', arch: f.arch, machine: f.machine, bits: f.bits, endianness: 'little', fileKind: f.isDll ? 'dll' : 'exe' });
  }
  if (isMacho(buf)) {
    const f = parseMacho(buf, limits);
    return withPlugins({ format: 'macho', arch: f.arch, machine: f.cputype >>> 0, bits: f.bits, endianness: f.endianness, fileKind: f.fileType });
  }
  if (isFat(buf)) {
    const slices = parseFat(buf, limits).map((a): FatSlice => {
      const slice = buf.subarray(a.offset, a.offset + a.size);
      const common = { offset: a.offset, size: a.size, arch: a.arch, cputype: a.cputype >>> 0 };
      if (!isMacho(slice)) return { ...common, format: 'other', bits: null, endianness: null, fileKind: null };
      const f = parseMacho(slice, limits, a.offset);
      return { ...common, format: 'macho', bits: f.bits, endianness: f.endianness, fileKind: f.fileType };
    });
    return withPlugins({ format: 'macho-fat', arch: null, machine: null, bits: null, endianness: null, fileKind: null, slices });
  }
  if (isGzip(buf) || isZstd(buf) || isTar(buf)) {
    return { format: 'tar', arch: null, machine: null, bits: null, endianness: null, fileKind: null, bundle: describeEbpfBundle(buf, limits) };
  }
  throw new UnsupportedFormatError('not an ELF, PE, Mach-O or tar file');
}
