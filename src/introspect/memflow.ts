/**
 * memflow plugin descriptors, read statically as memflow's `plugin_analyzer.rs` does (MEMFLOW-REGISTRY-API.md c.8):
 * exports named `MEMFLOW_CONNECTOR_*` / `MEMFLOW_OS_*` point at a `PluginDescriptor`; its ABI version, name,
 * version and description (each a `CSliceRef<u8>` = pointer + length) become `PluginDescriptorInfo`, the JSON
 * memflow-registry stores and serves. Pointers are resolved through ELF RELATIVE relocations, PE image base and
 * sections, or Mach-O segments (masking chained-fixup bits as memflow does).
 */
import {
  ELF_RELATIVE_TYPE,
  SHN_UNDEF,
  SHN_XINDEX,
  SHT_DYNSYM,
  SHT_REL,
  SHT_RELA,
  elfRelocations,
  elfSymbolName,
  elfSymbols,
  elfVaddrToOffset,
  isElf,
  parseElf,
  type ElfFile,
  type ElfRelocation,
} from './elf.ts';
import { MalformedBinaryError, NoPluginsError, UnsupportedFormatError } from './errors.ts';
import { isFat, isMacho, machoSymbols, machoTrieExports, machoVaddrToOffset, machoImageBase, parseFat, parseMacho, type MachoFile } from './macho.ts';
import { isPe, parsePe, peExportName, peExports, peRvaToOffset, type PeFile } from './pe.ts';
import { capCount, type BinaryReader } from './reader.ts';
import { resolveLimits, type Arch, type Bits, type IntrospectLimits, type IntrospectOptions, type MemflowFileType } from './types.ts';

export type PluginKind = 'connector' | 'os';

/** memflow's `PluginDescriptorInfo`, camelCased (see `toPluginDescriptorJson` for the wire shape). */
export interface PluginDescriptorInfo {
  pluginKind: PluginKind;
  exportName: string;
  fileType: MemflowFileType;
  architecture: Arch;
  /** memflow plugin ABI version (`MEMFLOW_PLUGIN_VERSION`, i32). */
  pluginVersion: number;
  name: string;
  version: string;
  description: string;
}

/** The registry JSON shape, snake_case, fields in memflow's serde order. */
export interface PluginDescriptorJson {
  plugin_kind: PluginKind;
  export_name: string;
  file_type: MemflowFileType;
  architecture: Arch;
  plugin_version: number;
  name: string;
  version: string;
  description: string;
}

export function toPluginDescriptorJson(d: PluginDescriptorInfo): PluginDescriptorJson {
  return {
    plugin_kind: d.pluginKind,
    export_name: d.exportName,
    file_type: d.fileType,
    architecture: d.architecture,
    plugin_version: d.pluginVersion,
    name: d.name,
    version: d.version,
    description: d.description,
  };
}

/**
 * `PluginDescriptor` field offsets (memflow 0.2 ABI): plugin_version i32, accept_input bool, input/output layout
 * pointers, then name / version / description as (pointer, usize length), then three callbacks.
 */
export const DESCRIPTOR_LAYOUTS = Object.freeze({
  32: { pluginVersion: 0x00, name: [0x10, 0x14], version: [0x18, 0x1c], description: [0x20, 0x24], size: 0x34 },
  64: { pluginVersion: 0x00, name: [0x18, 0x20], version: [0x28, 0x30], description: [0x38, 0x40], size: 0x60 },
} as const);

const PREFIXES: readonly [string, PluginKind][] = [
  ['MEMFLOW_CONNECTOR_', 'connector'],
  ['MEMFLOW_OS_', 'os'],
];
const PREFIX_BYTES = PREFIXES.map(([p]) => Buffer.from(p));

function kindOf(exportName: string): PluginKind | undefined {
  return PREFIXES.find(([p]) => exportName.startsWith(p))?.[1];
}

/** How a format resolves the descriptor's pointers. */
interface Image {
  reader: BinaryReader;
  bits: Bits;
  fileType: MemflowFileType;
  arch: Arch;
  /** Value of the pointer field at file offset `fieldOff` of the descriptor exported at `exp`. */
  pointer(exp: FoundExport, fieldOff: number): bigint;
  /** File offset of `len` bytes at pointer value `ptr`, or undefined. */
  toOffset(ptr: bigint, len: number): number | undefined;
}

interface FoundExport {
  name: string;
  /** File offset of the descriptor. */
  offset: number;
  /** Virtual address of the descriptor (ELF relocation lookup). */
  vaddr: bigint;
}

/**
 * Every plugin descriptor of a PE, ELF or (thin or fat) Mach-O file; `[]` when it exports none. Throws
 * `MalformedBinaryError` / `UnsupportedFormatError` / `LimitExceededError` for files it cannot read.
 */
export function scanMemflowPlugins(buf: Buffer, opts?: IntrospectOptions): PluginDescriptorInfo[] {
  const limits = resolveLimits(opts);
  if (isElf(buf)) return elfPlugins(parseElf(buf, limits), limits);
  if (isPe(buf)) return pePlugins(parsePe(buf, limits), limits);
  if (isMacho(buf)) return machoPlugins(parseMacho(buf, limits), limits);
  if (isFat(buf)) {
    const out: PluginDescriptorInfo[] = [];
    for (const a of parseFat(buf, limits)) {
      const slice = buf.subarray(a.offset, a.offset + a.size);
      if (!isMacho(slice)) continue; // e.g. a static archive in a universal .a: not a plugin (memflow errors here)
      out.push(...machoPlugins(parseMacho(slice, limits, a.offset), limits));
      capCount(out.length, limits.maxPlugins, 'maxPlugins', 'plugin descriptors');
    }
    return out;
  }
  throw new UnsupportedFormatError('not a PE, ELF or Mach-O file');
}

/** Like `scanMemflowPlugins`, but a file without descriptors is refused with `NoPluginsError`. */
export function readMemflowPlugins(buf: Buffer, opts?: IntrospectOptions): PluginDescriptorInfo[] {
  const found = scanMemflowPlugins(buf, opts);
  if (found.length === 0) throw new NoPluginsError(isElf(buf) ? 'ELF' : isPe(buf) ? 'PE' : 'Mach-O');
  return found;
}

function readDescriptors(img: Image, exports: FoundExport[], limits: IntrospectLimits): PluginDescriptorInfo[] {
  if (exports.length > 0 && !img.reader.littleEndian) throw new UnsupportedFormatError('big-endian memflow plugins are not supported');
  const L = DESCRIPTOR_LAYOUTS[img.bits];
  const r = img.reader;
  return exports
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((exp) => {
      r.check(exp.offset, L.size, `plugin descriptor ${exp.name}`);
      const str = ([ptrOff, lenOff]: readonly [number, number], field: string): string => {
        const what = `${field} of ${exp.name}`;
        const ptr = img.pointer(exp, ptrOff);
        const len = r.ptrn(exp.offset + lenOff, img.bits, `${what} length`);
        if (ptr === 0n && len <= 1) return '';
        if (len > limits.maxStringLength) throw new MalformedBinaryError(`${what} is ${len} bytes long (max ${limits.maxStringLength})`, r.base + exp.offset + lenOff);
        const off = img.toOffset(ptr, len);
        if (off === undefined) throw new MalformedBinaryError(`${what} points at 0x${ptr.toString(16)}, outside the file's mapped data`, r.base + exp.offset + ptrOff);
        // A C plugin may count the terminator; memflow's Rust strings never contain NUL.
        return r.utf8(off, len, what).replace(/\0+$/, '');
      };
      return {
        pluginKind: kindOf(exp.name)!,
        exportName: exp.name,
        fileType: img.fileType,
        architecture: img.arch,
        pluginVersion: r.i32(exp.offset + L.pluginVersion, `plugin_version of ${exp.name}`),
        name: str(L.name, 'name'),
        version: str(L.version, 'version'),
        description: str(L.description, 'description'),
      };
    });
}

function elfPlugins(f: ElfFile, limits: IntrospectLimits): PluginDescriptorInfo[] {
  const r = f.reader;
  const size = DESCRIPTOR_LAYOUTS[f.bits].size;
  const found: FoundExport[] = [];
  const seen = new Set<number>();
  const dynsym = f.sections.find((s) => s.type === SHT_DYNSYM); // an ELF file has at most one
  if (dynsym !== undefined) {
    for (const sym of elfSymbols(f, dynsym, limits)) {
      if (sym.shndx === SHN_UNDEF || sym.nameOffset < 0 || seen.has(sym.nameOffset)) continue;
      if (!PREFIX_BYTES.some((p) => r.startsWith(sym.nameOffset, p))) continue;
      seen.add(sym.nameOffset);
      const name = elfSymbolName(f, sym, limits);
      if (kindOf(name) === undefined) continue;
      if (sym.shndx === SHN_XINDEX) throw new MalformedBinaryError(`symbol ${name} uses SHN_XINDEX`);
      capCount(found.length + 1, limits.maxPlugins, 'maxPlugins', 'plugin descriptors');
      const offset = elfVaddrToOffset(f, sym.value, size);
      if (offset === undefined) throw new MalformedBinaryError(`descriptor ${name} at 0x${sym.value.toString(16)} is not backed by the file`);
      found.push({ name, offset, vaddr: sym.value });
    }
  }
  if (found.length === 0) return [];

  // One pass over the relocation tables, keeping only entries that patch a descriptor's string pointers.
  const L = DESCRIPTOR_LAYOUTS[f.bits];
  const wanted = new Map<bigint, ElfRelocation | null>();
  for (const exp of found) for (const [p] of [L.name, L.version, L.description]) wanted.set(exp.vaddr + BigInt(p), null);
  let scanned = 0;
  for (const s of f.sections) {
    if (s.type !== SHT_REL && s.type !== SHT_RELA) continue;
    for (const rel of elfRelocations(f, s, limits)) {
      // Several section headers may describe the same bytes: bound the total, not each table.
      capCount(++scanned, limits.maxSymbols, 'maxSymbols', 'relocations');
      if (wanted.has(rel.offset)) wanted.set(rel.offset, rel);
    }
  }
  const relative = ELF_RELATIVE_TYPE[f.machine];
  return readDescriptors(
    {
      reader: r,
      bits: f.bits,
      fileType: 'elf',
      arch: f.arch,
      pointer(exp, fieldOff) {
        const raw = r.ptr(exp.offset + fieldOff, f.bits);
        const rel = wanted.get(exp.vaddr + BigInt(fieldOff));
        if (raw !== 0n || rel == null) return raw;
        if (rel.type !== relative) {
          throw new MalformedBinaryError(`descriptor ${exp.name} field +0x${fieldOff.toString(16)} has unsupported relocation type ${rel.type}`);
        }
        return rel.addend ?? raw;
      },
      toOffset: (ptr, len) => elfVaddrToOffset(f, ptr, len),
    },
    found,
    limits,
  );
}

function pePlugins(f: PeFile, limits: IntrospectLimits): PluginDescriptorInfo[] {
  const r = f.reader;
  const size = DESCRIPTOR_LAYOUTS[f.bits].size;
  const found: FoundExport[] = [];
  for (const e of peExports(f, limits)) {
    if (e.forwarded || !PREFIX_BYTES.some((p) => r.startsWith(e.nameOffset, p))) continue;
    const name = peExportName(f, e, limits);
    if (kindOf(name) === undefined) continue;
    capCount(found.length + 1, limits.maxPlugins, 'maxPlugins', 'plugin descriptors');
    const offset = peRvaToOffset(f, e.rva, size);
    if (offset === undefined) throw new MalformedBinaryError(`descriptor ${name} at RVA 0x${e.rva.toString(16)} is not backed by the file`);
    found.push({ name, offset, vaddr: f.imageBase + BigInt(e.rva) });
  }
  return readDescriptors(
    {
      reader: r,
      bits: f.bits,
      fileType: 'pe',
      arch: f.arch,
      pointer: (exp, fieldOff) => r.ptr(exp.offset + fieldOff, f.bits),
      toOffset(ptr, len) {
        const rva = ptr - f.imageBase;
        if (rva < 0n || rva > 0xffffffffn) return undefined;
        return peRvaToOffset(f, Number(rva), len);
      },
    },
    found,
    limits,
  );
}

function machoPlugins(f: MachoFile, limits: IntrospectLimits): PluginDescriptorInfo[] {
  const size = DESCRIPTOR_LAYOUTS[f.bits].size;
  const found = new Map<string, FoundExport>();
  const add = (raw: string, vmaddr: bigint): void => {
    const name = raw.slice(1); // C symbols carry a leading underscore
    if (found.has(name) || kindOf(name) === undefined) return;
    capCount(found.size + 1, limits.maxPlugins, 'maxPlugins', 'plugin descriptors');
    const offset = machoVaddrToOffset(f, vmaddr, size);
    if (offset === undefined) throw new MalformedBinaryError(`descriptor ${name} at 0x${vmaddr.toString(16)} is not backed by the file`);
    found.set(name, { name, offset, vaddr: vmaddr });
  };
  const prefixes = PREFIXES.map(([p]) => `_${p}`);
  for (const e of machoTrieExports(f, limits, prefixes)) add(e.name, e.vmaddr);
  for (const p of prefixes) for (const e of machoSymbols(f, limits, p)) add(e.name, e.vmaddr);
  const base = machoImageBase(f);
  return readDescriptors(
    {
      reader: f.reader,
      bits: f.bits,
      fileType: 'mach',
      arch: f.arch,
      pointer: (exp, fieldOff) => f.reader.ptr(exp.offset + fieldOff, f.bits),
      toOffset(ptr, len) {
        // Plain pointer first; else the low 32 bits (chained-fixup encodings keep the target there), as an
        // address or as an offset from the image base.
        const low = ptr & 0xffffffffn;
        return machoVaddrToOffset(f, ptr, len) ?? machoVaddrToOffset(f, low, len) ?? machoVaddrToOffset(f, base + low, len);
      },
    },
    [...found.values()],
    limits,
  );
}
