/**
 * Mach-O: thin images (32/64-bit, either byte order) and fat/universal containers. Load commands, segments and
 * sections, the export trie (LC_DYLD_INFO[_ONLY] or LC_DYLD_EXPORTS_TRIE), the nlist symbol table, and
 * vm address → file offset. The trie walk is iterative, visits each node once and refuses loops.
 */
import { MalformedBinaryError, UnsupportedFormatError } from './errors.ts';
import { BinaryReader, capCount, checkTable } from './reader.ts';
import { archFromMachoCpu, type Arch, type Bits, type Endianness, type IntrospectLimits } from './types.ts';

const MH_MAGIC = 0xfeedface;
const MH_MAGIC_64 = 0xfeedfacf;
const MH_CIGAM = 0xcefaedfe;
const MH_CIGAM_64 = 0xcffaedfe;
export const FAT_MAGIC = 0xcafebabe;
export const FAT_MAGIC_64 = 0xcafebabf;

const LC_SEGMENT = 0x1;
const LC_SYMTAB = 0x2;
const LC_SEGMENT_64 = 0x19;
const LC_DYLD_INFO = 0x22;
const LC_DYLD_INFO_ONLY = 0x80000022;
const LC_DYLD_EXPORTS_TRIE = 0x80000033;

const EXPORT_KIND_MASK = 0x03;
const EXPORT_KIND_ABSOLUTE = 0x02;
const EXPORT_REEXPORT = 0x08;
const EXPORT_STUB_AND_RESOLVER = 0x10;

const FILE_TYPES: Readonly<Record<number, string>> = {
  1: 'object', 2: 'execute', 3: 'fvmlib', 4: 'core', 5: 'preload', 6: 'dylib', 7: 'dylinker', 8: 'bundle',
  9: 'dylib_stub', 10: 'dsym', 11: 'kext_bundle', 12: 'fileset',
};

export interface MachoSection {
  sectname: string;
  segname: string;
  addr: bigint;
  size: bigint;
  offset: number;
}

export interface MachoSegment {
  name: string;
  vmaddr: bigint;
  vmsize: bigint;
  fileoff: number;
  filesize: number;
  sections: MachoSection[];
}

export interface MachoFile {
  reader: BinaryReader;
  bits: Bits;
  endianness: Endianness;
  cputype: number;
  cpusubtype: number;
  arch: Arch;
  /** MH_DYLIB → 'dylib', MH_EXECUTE → 'execute', … */
  fileType: string;
  segments: MachoSegment[];
  symtab: { symoff: number; nsyms: number; stroff: number; strsize: number } | undefined;
  exportTrie: { off: number; size: number } | undefined;
}

export interface MachoExport {
  /** As in the binary, with the leading `_` of C symbols. */
  name: string;
  /** Virtual address (image base + trie offset, or n_value). */
  vmaddr: bigint;
}

export interface FatArch {
  cputype: number;
  cpusubtype: number;
  arch: Arch;
  offset: number;
  size: number;
  align: number;
}

export function isMacho(buf: Buffer): boolean {
  if (buf.length < 4) return false;
  const m = buf.readUInt32LE(0);
  return m === MH_MAGIC || m === MH_MAGIC_64 || m === MH_CIGAM || m === MH_CIGAM_64;
}

/**
 * `0xCAFEBABE` (or the 64-bit variant) with a plausible arch count. Java class files share the magic; their
 * "count" is the class version (≥ 45), so counts above 30 are not fat Mach-O (Apple's `file` uses the same rule).
 */
export function isFat(buf: Buffer): boolean {
  if (buf.length < 8) return false;
  const m = buf.readUInt32BE(0);
  return (m === FAT_MAGIC || m === FAT_MAGIC_64) && buf.readUInt32BE(4) <= 30;
}

export function parseFat(buf: Buffer, limits: IntrospectLimits): FatArch[] {
  if (!isFat(buf)) throw new UnsupportedFormatError('not a fat Mach-O file');
  const r = new BinaryReader(buf, 'big');
  const is64 = r.u32(0) === FAT_MAGIC_64;
  const n = r.u32(4, 'nfat_arch');
  const entsize = is64 ? 32 : 20;
  checkTable(r, 8, n, entsize, 'fat arch table', { limit: 'maxFatArches', value: limits.maxFatArches });
  const arches: FatArch[] = [];
  for (let i = 0; i < n; i++) {
    const o = 8 + i * entsize;
    const cputype = r.i32(o);
    const offset = is64 ? r.u64n(o + 8, 'fat slice offset') : r.u32(o + 8);
    const size = is64 ? r.u64n(o + 16, 'fat slice size') : r.u32(o + 12);
    r.check(offset, size, `fat slice ${i}`);
    if (offset < 8 + n * entsize) throw new MalformedBinaryError(`fat slice ${i} overlaps the fat header`, o);
    arches.push({ cputype, cpusubtype: r.i32(o + 4), arch: archFromMachoCpu(cputype), offset, size, align: r.u32(o + (is64 ? 24 : 16)) });
  }
  return arches;
}

export function parseMacho(buf: Buffer, limits: IntrospectLimits, base = 0): MachoFile {
  if (!isMacho(buf)) throw new UnsupportedFormatError('not a thin Mach-O file');
  const m = buf.readUInt32LE(0);
  const endianness: Endianness = m === MH_MAGIC || m === MH_MAGIC_64 ? 'little' : 'big';
  const bits: Bits = m === MH_MAGIC_64 || m === MH_CIGAM_64 ? 64 : 32;
  const r = new BinaryReader(buf, endianness, base);
  const is64 = bits === 64;
  const hdr = is64 ? 32 : 28;
  r.check(0, hdr, 'Mach-O header');
  const cputype = r.i32(4);
  const ncmds = r.u32(16, 'ncmds');
  const sizeofcmds = r.u32(20, 'sizeofcmds');
  r.check(hdr, sizeofcmds, 'load commands');
  // Each command takes at least 8 bytes.
  if (ncmds * 8 > sizeofcmds) throw new MalformedBinaryError(`${ncmds} load commands cannot fit in ${sizeofcmds} bytes`, base + 16);
  capCount(ncmds, limits.maxLoadCommands, 'maxLoadCommands', 'load commands');

  const segments: MachoSegment[] = [];
  let symtab: MachoFile['symtab'];
  let exportTrie: MachoFile['exportTrie'];
  let nsectTotal = 0;
  let o = hdr;
  const end = hdr + sizeofcmds;
  for (let i = 0; i < ncmds; i++) {
    const cmd = r.u32(o, `load command ${i}`);
    const size = r.u32(o + 4, `load command ${i} size`);
    if (size < 8 || size % 4 !== 0 || o + size > end) throw new MalformedBinaryError(`load command ${i} has invalid size ${size}`, base + o + 4);
    const lc = r.sub(o, size, `load command ${i}`);
    if (cmd === LC_SEGMENT || cmd === LC_SEGMENT_64) {
      const s64 = cmd === LC_SEGMENT_64;
      const seg: MachoSegment = {
        name: lc.fixedStr(8, 16, 'segname'),
        vmaddr: s64 ? lc.u64(24) : BigInt(lc.u32(24)),
        vmsize: s64 ? lc.u64(32) : BigInt(lc.u32(28)),
        fileoff: s64 ? lc.u64n(40, 'fileoff') : lc.u32(32),
        filesize: s64 ? lc.u64n(48, 'filesize') : lc.u32(36),
        sections: [],
      };
      if (seg.filesize > 0) r.check(seg.fileoff, seg.filesize, `segment ${seg.name}`);
      const nsects = lc.u32(s64 ? 64 : 48, 'nsects');
      const secSize = s64 ? 80 : 68;
      const first = s64 ? 72 : 56;
      checkTable(lc, first, nsects, secSize, `sections of ${seg.name}`, { limit: 'maxSections', value: limits.maxSections });
      nsectTotal += nsects;
      capCount(nsectTotal, limits.maxSections, 'maxSections', 'sections');
      for (let k = 0; k < nsects; k++) {
        const so = first + k * secSize;
        seg.sections.push({
          sectname: lc.fixedStr(so, 16),
          segname: lc.fixedStr(so + 16, 16),
          addr: s64 ? lc.u64(so + 32) : BigInt(lc.u32(so + 32)),
          size: s64 ? lc.u64(so + 40) : BigInt(lc.u32(so + 36)),
          offset: lc.u32(so + (s64 ? 48 : 40)),
        });
      }
      segments.push(seg);
    } else if (cmd === LC_SYMTAB) {
      symtab = { symoff: lc.u32(8), nsyms: lc.u32(12), stroff: lc.u32(16), strsize: lc.u32(20) };
      r.check(symtab.stroff, symtab.strsize, 'string table');
    } else if ((cmd === LC_DYLD_INFO || cmd === LC_DYLD_INFO_ONLY) && lc.u32(44) > 0) {
      exportTrie = { off: lc.u32(40), size: lc.u32(44) };
    } else if (cmd === LC_DYLD_EXPORTS_TRIE && lc.u32(12) > 0) {
      exportTrie = { off: lc.u32(8), size: lc.u32(12) };
    }
    o += size;
  }
  if (exportTrie !== undefined) r.check(exportTrie.off, exportTrie.size, 'export trie');
  const filetype = r.u32(12);
  return {
    reader: r,
    bits,
    endianness,
    cputype,
    cpusubtype: r.i32(8),
    arch: archFromMachoCpu(cputype),
    fileType: FILE_TYPES[filetype] ?? `unknown:${filetype}`,
    segments,
    symtab,
    exportTrie,
  };
}

/** The image's load address: vmaddr of the segment mapping file offset 0 (normally __TEXT). */
export function machoImageBase(f: MachoFile): bigint {
  return f.segments.find((s) => s.fileoff === 0 && s.filesize > 0)?.vmaddr ?? 0n;
}

/** File offset of `len` bytes at `vmaddr`; undefined when no segment holds them all in the file. */
export function machoVaddrToOffset(f: MachoFile, vmaddr: bigint, len: number): number | undefined {
  for (const s of f.segments) {
    if (vmaddr < s.vmaddr) continue;
    const delta = vmaddr - s.vmaddr;
    if (delta + BigInt(len) > BigInt(s.filesize)) continue;
    const off = s.fileoff + Number(delta);
    if (f.reader.has(off, len)) return off;
  }
  return undefined;
}

/**
 * Exports of the dyld export trie whose names start with one of `prefixes` (re-exports are skipped: they have no
 * address in this image). Only edges that can lead to such names are followed, so names are built for the wanted
 * subtree alone; each node is visited once, a revisit (a loop) is malformed.
 */
export function* machoTrieExports(f: MachoFile, limits: IntrospectLimits, prefixes: readonly string[]): Generator<MachoExport> {
  if (f.exportTrie === undefined) return;
  const t = f.reader.sub(f.exportTrie.off, f.exportTrie.size, 'export trie');
  const imageBase = machoImageBase(f);
  // `inside`: the name already starts with a wanted prefix (so does every name below it) — checked once per path,
  // so long names are never rescanned.
  const visited = new Set<number>();
  const stack: { node: number; name: string; inside: boolean }[] = [{ node: 0, name: '', inside: false }];
  while (stack.length > 0) {
    const { node, name, inside } = stack.pop()!;
    if (visited.has(node)) throw new MalformedBinaryError(`export trie loops back to node 0x${node.toString(16)}`, t.base + node);
    visited.add(node);
    capCount(visited.size, limits.maxTrieNodes, 'maxTrieNodes', 'export trie nodes');
    const term = t.uleb128(node, 'trie terminal size');
    let p = term.next;
    if (term.value > 0) {
      t.check(p, term.value, 'trie terminal');
      const flags = t.uleb128(p, 'export flags');
      if ((flags.value & EXPORT_REEXPORT) === 0 && inside) {
        const addr = t.uleb128(flags.next, 'export address');
        const absolute = (flags.value & EXPORT_KIND_MASK) === EXPORT_KIND_ABSOLUTE;
        if ((flags.value & EXPORT_STUB_AND_RESOLVER) === 0) yield { name, vmaddr: absolute ? BigInt(addr.value) : imageBase + BigInt(addr.value) };
      }
      p += term.value;
    }
    const children = t.u8(p, 'trie child count');
    p += 1;
    for (let c = 0; c < children; c++) {
      const label = t.cstrNext(p, limits.maxSymbolNameLength, 'trie edge label');
      if (label.value === '') throw new MalformedBinaryError('export trie edge with an empty label', t.base + p);
      const child = t.uleb128(label.next, 'trie child offset');
      p = child.next;
      if (child.value >= t.length) throw new MalformedBinaryError(`export trie child offset 0x${child.value.toString(16)} is outside the trie`, t.base + p);
      const childName = name + label.value;
      if (childName.length > limits.maxSymbolNameLength) throw new MalformedBinaryError('export trie symbol name is too long', t.base + p);
      if (inside) stack.push({ node: child.value, name: childName, inside });
      else if (prefixes.some((x) => childName.startsWith(x))) stack.push({ node: child.value, name: childName, inside: true });
      else if (prefixes.some((x) => x.startsWith(childName))) stack.push({ node: child.value, name: childName, inside: false });
    }
  }
}

/** Defined external symbols of the nlist table (N_SECT | N_EXT, not stabs) whose names start with `prefix`. */
export function* machoSymbols(f: MachoFile, limits: IntrospectLimits, prefix: string): Generator<MachoExport> {
  const st = f.symtab;
  if (st === undefined) return;
  const r = f.reader;
  const pfx = Buffer.from(prefix, 'utf8');
  const entsize = f.bits === 64 ? 16 : 12;
  checkTable(r, st.symoff, st.nsyms, entsize, 'symbol table', { limit: 'maxSymbols', value: limits.maxSymbols });
  const seen = new Set<number>();
  for (let i = 0; i < st.nsyms; i++) {
    const o = st.symoff + i * entsize;
    const type = r.u8(o + 4);
    if ((type & 0xe0) !== 0 || (type & 0x0e) !== 0x0e || (type & 0x01) === 0) continue;
    const strx = r.u32(o);
    if (strx >= st.strsize) throw new MalformedBinaryError(`symbol ${i} name offset ${strx} is past the string table`, r.base + o);
    if (seen.has(strx) || !r.startsWith(st.stroff + strx, pfx)) continue;
    seen.add(strx);
    const name = r.cstr(st.stroff + strx, Math.min(st.strsize - strx, limits.maxSymbolNameLength), `symbol ${i} name`);
    yield { name, vmaddr: f.bits === 64 ? r.u64(o + 8) : BigInt(r.u32(o + 8)) };
  }
}
