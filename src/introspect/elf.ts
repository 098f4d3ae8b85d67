/**
 * ELF (32/64-bit, either byte order): header, section and program headers, symbol tables, relocation tables and
 * virtual-address → file-offset mapping. Tables are read lazily through generators; every table is checked to fit
 * in the file (and against the limits) before its loop starts, so hostile counts fail fast without allocating.
 */
import { MalformedBinaryError, UnsupportedFormatError } from './errors.ts';
import { BinaryReader, checkTable, toSafe } from './reader.ts';
import { archFromElfMachine, type Arch, type Bits, type Endianness, type IntrospectLimits } from './types.ts';

export const EM_BPF = 247;
export const SHT_SYMTAB = 2;
export const SHT_RELA = 4;
export const SHT_NOBITS = 8;
export const SHT_REL = 9;
export const SHT_DYNSYM = 11;
export const SHF_ALLOC = 0x2;
export const SHF_EXECINSTR = 0x4;
export const PT_LOAD = 1;
export const STT_OBJECT = 1;
export const STT_FUNC = 2;
export const STT_SECTION = 3;
export const SHN_UNDEF = 0;
export const SHN_LORESERVE = 0xff00;
export const SHN_XINDEX = 0xffff;

/** The RELATIVE relocation type of each machine memflow supports (its value is the addend: base + A). */
export const ELF_RELATIVE_TYPE: Readonly<Record<number, number>> = Object.freeze({
  3: 8, // R_386_RELATIVE
  62: 8, // R_X86_64_RELATIVE
  40: 23, // R_ARM_RELATIVE
  183: 1027, // R_AARCH64_RELATIVE
});

const ELF_TYPES: Readonly<Record<number, string>> = { 0: 'none', 1: 'rel', 2: 'exec', 3: 'dyn', 4: 'core' };

export interface ElfSection {
  index: number;
  name: string;
  type: number;
  flags: bigint;
  addr: bigint;
  offset: number;
  size: number;
  link: number;
  info: number;
  entsize: number;
}

export interface ElfSegment {
  type: number;
  flags: number;
  offset: number;
  vaddr: bigint;
  filesz: number;
  memsz: bigint;
}

export interface ElfFile {
  reader: BinaryReader;
  bits: Bits;
  endianness: Endianness;
  /** e_type: 'rel' (object), 'exec', 'dyn' (shared library / PIE), 'core', 'none' or 'os-or-proc:<n>'. */
  elfType: string;
  machine: number;
  arch: Arch;
  osabi: number;
  sections: ElfSection[];
  segments: ElfSegment[];
}

/**
 * A symbol table entry. Its name is not decoded (a hostile table could make that quadratic): test it with
 * `reader.startsWith(nameOffset, …)` and read it with `elfSymbolName`.
 */
export interface ElfSymbol {
  index: number;
  /** Absolute offset of the name in the file, or -1 for a nameless symbol. */
  nameOffset: number;
  /** Bytes from `nameOffset` to the end of the string table. */
  nameMax: number;
  value: bigint;
  size: number;
  /** STT_* */
  type: number;
  /** STB_* */
  bind: number;
  shndx: number;
}

export interface ElfRelocation {
  offset: bigint;
  type: number;
  sym: number;
  /** Explicit addend (RELA); undefined for REL, whose addend is the value in place. */
  addend: bigint | undefined;
}

export function isElf(buf: Buffer): boolean {
  return buf.length >= 4 && buf[0] === 0x7f && buf[1] === 0x45 && buf[2] === 0x4c && buf[3] === 0x46;
}

export function parseElf(buf: Buffer, limits: IntrospectLimits): ElfFile {
  if (!isElf(buf)) throw new UnsupportedFormatError('not an ELF file');
  const raw = new BinaryReader(buf);
  const cls = raw.u8(4, 'EI_CLASS');
  const data = raw.u8(5, 'EI_DATA');
  if (cls !== 1 && cls !== 2) throw new MalformedBinaryError(`invalid ELF class ${cls}`, 4);
  if (data !== 1 && data !== 2) throw new MalformedBinaryError(`invalid ELF data encoding ${data}`, 5);
  const bits: Bits = cls === 2 ? 64 : 32;
  const endianness: Endianness = data === 1 ? 'little' : 'big';
  const r = raw.as(endianness);
  const is64 = bits === 64;
  r.check(0, is64 ? 64 : 52, 'ELF header');

  const eType = r.u16(16, 'e_type');
  const machine = r.u16(18, 'e_machine');
  const phoff = r.ptrn(is64 ? 32 : 28, bits, 'e_phoff');
  const shoff = r.ptrn(is64 ? 40 : 32, bits, 'e_shoff');
  const phentsize = r.u16(is64 ? 54 : 42, 'e_phentsize');
  let phnum = r.u16(is64 ? 56 : 44, 'e_phnum');
  const shentsize = r.u16(is64 ? 58 : 46, 'e_shentsize');
  let shnum = r.u16(is64 ? 60 : 48, 'e_shnum');
  let shstrndx = r.u16(is64 ? 62 : 50, 'e_shstrndx');

  const shMin = is64 ? 64 : 40;
  if (shoff !== 0) {
    if (shentsize < shMin) throw new MalformedBinaryError(`e_shentsize ${shentsize} is smaller than ${shMin}`, is64 ? 58 : 46);
    // Extended numbering: the real counts live in section header 0.
    if (shnum === 0) shnum = toSafe(is64 ? r.u64(shoff + 32, 'sh[0].sh_size') : BigInt(r.u32(shoff + 20, 'sh[0].sh_size')), 'section count');
    if (shstrndx === SHN_XINDEX) shstrndx = r.u32(shoff + (is64 ? 40 : 24), 'sh[0].sh_link');
    if (phnum === 0xffff) phnum = r.u32(shoff + (is64 ? 44 : 28), 'sh[0].sh_info');
  } else {
    shnum = 0;
  }
  checkTable(r, shoff, shnum, shentsize, 'section header table', { limit: 'maxSections', value: limits.maxSections });

  const sections: ElfSection[] = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    const s: ElfSection = {
      index: i,
      name: '',
      type: r.u32(o + 4),
      flags: is64 ? r.u64(o + 8) : BigInt(r.u32(o + 8)),
      addr: r.ptr(o + (is64 ? 16 : 12), bits),
      offset: r.ptrn(o + (is64 ? 24 : 16), bits, `section ${i} offset`),
      size: r.ptrn(o + (is64 ? 32 : 20), bits, `section ${i} size`),
      link: r.u32(o + (is64 ? 40 : 24)),
      info: r.u32(o + (is64 ? 44 : 28)),
      entsize: r.ptrn(o + (is64 ? 56 : 36), bits, `section ${i} entsize`),
    };
    if (i > 0 && s.type !== SHT_NOBITS && s.type !== 0) r.check(s.offset, s.size, `section ${i} data`);
    sections.push(s);
  }
  if (shnum > 0 && shstrndx !== 0) {
    const strtab = sections[shstrndx];
    if (strtab === undefined) throw new MalformedBinaryError(`e_shstrndx ${shstrndx} is not a section (of ${shnum})`);
    for (const s of sections) {
      const nameOff = r.u32(shoff + s.index * shentsize, 'sh_name');
      if (nameOff >= strtab.size) throw new MalformedBinaryError(`section ${s.index} name offset ${nameOff} is past the string table`);
      s.name = r.cstr(strtab.offset + nameOff, Math.min(strtab.size - nameOff, limits.maxSymbolNameLength), `section ${s.index} name`);
    }
  }

  const phMin = is64 ? 56 : 32;
  if (phoff === 0) phnum = 0;
  if (phnum > 0 && phentsize < phMin) throw new MalformedBinaryError(`e_phentsize ${phentsize} is smaller than ${phMin}`, is64 ? 54 : 42);
  checkTable(r, phoff, phnum, phentsize, 'program header table', { limit: 'maxSections', value: limits.maxSections });
  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    segments.push({
      type: r.u32(o),
      flags: r.u32(o + (is64 ? 4 : 24)),
      offset: r.ptrn(o + (is64 ? 8 : 4), bits, `segment ${i} offset`),
      vaddr: r.ptr(o + (is64 ? 16 : 8), bits),
      filesz: r.ptrn(o + (is64 ? 32 : 16), bits, `segment ${i} filesz`),
      memsz: r.ptr(o + (is64 ? 40 : 20), bits),
    });
  }

  return {
    reader: r,
    bits,
    endianness,
    elfType: ELF_TYPES[eType] ?? `os-or-proc:${eType}`,
    machine,
    arch: archFromElfMachine(machine),
    osabi: r.u8(7),
    sections,
    segments,
  };
}

export function elfSection(f: ElfFile, name: string): ElfSection | undefined {
  return f.sections.find((s) => s.name === name);
}

/** The bytes of a section (empty for SHT_NOBITS). */
export function elfSectionData(f: ElfFile, s: ElfSection): BinaryReader {
  if (s.type === SHT_NOBITS) return f.reader.sub(0, 0);
  return f.reader.sub(s.offset, s.size, `section ${s.name || s.index}`);
}

/**
 * File offset of `len` bytes at virtual address `vaddr`, through the PT_LOAD segments. Undefined when no segment
 * holds all of them in the file (unmapped, or zero-filled memory past p_filesz).
 */
export function elfVaddrToOffset(f: ElfFile, vaddr: bigint, len: number): number | undefined {
  for (const p of f.segments) {
    if (p.type !== PT_LOAD) continue;
    if (vaddr < p.vaddr) continue;
    const delta = vaddr - p.vaddr;
    if (delta + BigInt(len) > BigInt(p.filesz)) continue;
    const off = p.offset + Number(delta);
    if (f.reader.has(off, len)) return off;
  }
  return undefined;
}

/** Symbols of a SHT_SYMTAB / SHT_DYNSYM section, names from its sh_link string table. */
export function* elfSymbols(f: ElfFile, symtab: ElfSection, limits: IntrospectLimits): Generator<ElfSymbol> {
  const r = f.reader;
  const is64 = f.bits === 64;
  const entsize = is64 ? 24 : 16;
  if (symtab.entsize !== 0 && symtab.entsize !== entsize) {
    throw new MalformedBinaryError(`symbol table ${symtab.name} has entry size ${symtab.entsize}, expected ${entsize}`);
  }
  const strtab = f.sections[symtab.link];
  if (strtab === undefined || strtab.type === SHT_NOBITS) {
    throw new MalformedBinaryError(`symbol table ${symtab.name} links to invalid string table section ${symtab.link}`);
  }
  const count = Math.floor(symtab.size / entsize);
  checkTable(r, symtab.offset, count, entsize, `symbol table ${symtab.name}`, { limit: 'maxSymbols', value: limits.maxSymbols });
  for (let i = 0; i < count; i++) {
    const o = symtab.offset + i * entsize;
    const nameOff = r.u32(o);
    const info = r.u8(o + (is64 ? 4 : 12));
    const shndx = r.u16(o + (is64 ? 6 : 14));
    if (nameOff !== 0 && nameOff >= strtab.size) {
      throw new MalformedBinaryError(`symbol ${i} name offset ${nameOff} is past its string table`, r.base + o);
    }
    yield {
      index: i,
      nameOffset: nameOff === 0 ? -1 : strtab.offset + nameOff,
      nameMax: nameOff === 0 ? 0 : strtab.size - nameOff,
      value: is64 ? r.u64(o + 8) : BigInt(r.u32(o + 4)),
      size: is64 ? r.u64n(o + 16, 'st_size') : r.u32(o + 8),
      type: info & 0xf,
      bind: info >> 4,
      shndx,
    };
  }
}

/** The name of a symbol (bounded by its string table and `maxSymbolNameLength`). */
export function elfSymbolName(f: ElfFile, sym: ElfSymbol, limits: IntrospectLimits): string {
  if (sym.nameOffset < 0) return '';
  return f.reader.cstr(sym.nameOffset, Math.min(sym.nameMax, limits.maxSymbolNameLength), `symbol ${sym.index} name`);
}

/** Entries of a SHT_REL / SHT_RELA section. */
export function* elfRelocations(f: ElfFile, s: ElfSection, limits: IntrospectLimits): Generator<ElfRelocation> {
  const r = f.reader;
  const is64 = f.bits === 64;
  const rela = s.type === SHT_RELA;
  const entsize = (is64 ? 16 : 8) + (rela ? (is64 ? 8 : 4) : 0);
  if (s.entsize !== 0 && s.entsize !== entsize) {
    throw new MalformedBinaryError(`relocation section ${s.name} has entry size ${s.entsize}, expected ${entsize}`);
  }
  const count = Math.floor(s.size / entsize);
  checkTable(r, s.offset, count, entsize, `relocation section ${s.name}`, { limit: 'maxSymbols', value: limits.maxSymbols });
  for (let i = 0; i < count; i++) {
    const o = s.offset + i * entsize;
    if (is64) {
      const info = r.u64(o + 8);
      yield {
        offset: r.u64(o),
        type: Number(info & 0xffffffffn),
        sym: Number(info >> 32n),
        addend: rela ? r.buf[r.littleEndian ? 'readBigInt64LE' : 'readBigInt64BE'](o + 16) : undefined,
      };
    } else {
      const info = r.u32(o + 4);
      yield { offset: BigInt(r.u32(o)), type: info & 0xff, sym: info >>> 8, addend: rela ? BigInt(r.i32(o + 8)) : undefined };
    }
  }
}
