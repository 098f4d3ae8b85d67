/**
 * PE/COFF images (PE32 and PE32+): COFF and optional headers, section table, RVA → file offset, and the export
 * table. Little-endian by definition.
 */
import { MalformedBinaryError, UnsupportedFormatError } from './errors.ts';
import { BinaryReader, checkTable } from './reader.ts';
import { archFromPeMachine, type Arch, type Bits, type IntrospectLimits } from './types.ts';

const IMAGE_FILE_DLL = 0x2000;

export interface PeSection {
  name: string;
  virtualAddress: number;
  virtualSize: number;
  rawOffset: number;
  rawSize: number;
  characteristics: number;
}

export interface PeFile {
  reader: BinaryReader;
  bits: Bits;
  machine: number;
  arch: Arch;
  /** IMAGE_FILE_DLL set in the COFF characteristics. */
  isDll: boolean;
  imageBase: bigint;
  sizeOfHeaders: number;
  sections: PeSection[];
  /** `sections` ordered by virtual address (for RVA lookups). */
  sortedSections: PeSection[];
  /** Data directories (index 0 = export table). */
  dataDirectories: { rva: number; size: number }[];
}

/** A named export; its name is read with `peExportName` (test it first with `reader.startsWith(nameOffset, …)`). */
export interface PeExport {
  /** File offset of the NUL-terminated name. */
  nameOffset: number;
  ordinal: number;
  rva: number;
  /** The export forwards to another DLL ("DLL.Symbol" at `rva`): no code or data in this image. */
  forwarded: boolean;
}

export function peExportName(f: PeFile, e: PeExport, limits: IntrospectLimits): string {
  return f.reader.cstr(e.nameOffset, limits.maxSymbolNameLength, 'export name');
}

/** `MZ` — memflow's `is_binary` accepts exactly this for PE. */
export function isPe(buf: Buffer): boolean {
  return buf.length >= 2 && buf[0] === 0x4d && buf[1] === 0x5a;
}

export function parsePe(buf: Buffer, limits: IntrospectLimits): PeFile {
  if (!isPe(buf)) throw new UnsupportedFormatError('not a PE file');
  const r = new BinaryReader(buf, 'little');
  const peOff = r.u32(0x3c, 'e_lfanew');
  if (r.u32(peOff, 'PE signature') !== 0x00004550) throw new MalformedBinaryError('missing PE\\0\\0 signature', peOff);
  const coff = peOff + 4;
  r.check(coff, 20, 'COFF header');
  const machine = r.u16(coff);
  const nsections = r.u16(coff + 2);
  const optSize = r.u16(coff + 16);
  const characteristics = r.u16(coff + 18);
  const opt = coff + 20;
  if (optSize < 2) throw new MalformedBinaryError('PE image without an optional header', coff + 16);
  r.check(opt, optSize, 'optional header');
  const magic = r.u16(opt);
  if (magic !== 0x10b && magic !== 0x20b) throw new MalformedBinaryError(`unknown optional header magic 0x${magic.toString(16)}`, opt);
  const is64 = magic === 0x20b;
  const ddOff = is64 ? 112 : 96;
  if (optSize < ddOff) throw new MalformedBinaryError(`optional header of ${optSize} bytes is too small`, coff + 16);
  const imageBase = is64 ? r.u64(opt + 24) : BigInt(r.u32(opt + 28));
  const sizeOfHeaders = r.u32(opt + 60);
  const declaredDirs = r.u32(opt + (is64 ? 108 : 92));
  const ndirs = Math.min(declaredDirs, 16, Math.floor((optSize - ddOff) / 8));
  const dataDirectories: { rva: number; size: number }[] = [];
  for (let i = 0; i < ndirs; i++) dataDirectories.push({ rva: r.u32(opt + ddOff + i * 8), size: r.u32(opt + ddOff + i * 8 + 4) });

  const secOff = opt + optSize;
  checkTable(r, secOff, nsections, 40, 'section table', { limit: 'maxSections', value: limits.maxSections });
  const sections: PeSection[] = [];
  for (let i = 0; i < nsections; i++) {
    const o = secOff + i * 40;
    sections.push({
      name: r.fixedStr(o, 8),
      virtualSize: r.u32(o + 8),
      virtualAddress: r.u32(o + 12),
      rawSize: r.u32(o + 16),
      rawOffset: r.u32(o + 20),
      characteristics: r.u32(o + 36),
    });
  }
  return {
    reader: r,
    bits: is64 ? 64 : 32,
    machine,
    arch: archFromPeMachine(machine),
    isDll: (characteristics & IMAGE_FILE_DLL) !== 0,
    imageBase,
    sizeOfHeaders,
    sections,
    sortedSections: [...sections].sort((a, b) => a.virtualAddress - b.virtualAddress),
    dataDirectories,
  };
}

/**
 * File offset of `len` bytes at `rva`, through the section table (raw pointers rounded down to 512 as the Windows
 * loader does), or in the headers. Undefined when the bytes are not all backed by the file.
 */
export function peRvaToOffset(f: PeFile, rva: number, len: number): number | undefined {
  // Sections are sorted by address and do not overlap (the loader demands it): binary search for the last one
  // starting at or below `rva`, so export tables with many names stay linear whatever the section count.
  const secs = f.sortedSections;
  let lo = 0;
  let hi = secs.length - 1;
  let hit = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (secs[mid].virtualAddress <= rva) {
      hit = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  if (hit >= 0) {
    const s = secs[hit];
    const delta = rva - s.virtualAddress;
    if (delta + len <= Math.max(s.virtualSize, s.rawSize)) {
      if (delta + len > s.rawSize) return undefined; // zero-filled (uninitialised) part of the section
      const off = (s.rawOffset & ~0x1ff) + delta;
      return f.reader.has(off, len) ? off : undefined;
    }
  }
  if (rva + len <= f.sizeOfHeaders && f.reader.has(rva, len)) return rva;
  return undefined;
}

/** Like `peRvaToOffset`, but a miss is malformed. */
export function peRvaToOffsetOrThrow(f: PeFile, rva: number, len: number, what: string): number {
  const off = peRvaToOffset(f, rva, len);
  if (off === undefined) throw new MalformedBinaryError(`${what} at RVA 0x${rva.toString(16)} is not backed by the file`);
  return off;
}

/** Named exports of the export directory (exports by ordinal only have no name and are not listed). */
export function* peExports(f: PeFile, limits: IntrospectLimits): Generator<PeExport> {
  const dir = f.dataDirectories[0];
  if (dir === undefined || dir.rva === 0 || dir.size === 0) return;
  const r = f.reader;
  const d = peRvaToOffsetOrThrow(f, dir.rva, 40, 'export directory');
  const ordinalBase = r.u32(d + 16);
  const nfuncs = r.u32(d + 20);
  const nnames = r.u32(d + 24);
  const max = { limit: 'maxSymbols', value: limits.maxSymbols };
  if (nnames === 0) return;
  const funcs = peRvaToOffsetOrThrow(f, r.u32(d + 28), 0, 'export address table');
  const names = peRvaToOffsetOrThrow(f, r.u32(d + 32), 0, 'export name table');
  const ords = peRvaToOffsetOrThrow(f, r.u32(d + 36), 0, 'export ordinal table');
  checkTable(r, funcs, nfuncs, 4, 'export address table', max);
  checkTable(r, names, nnames, 4, 'export name table', max);
  checkTable(r, ords, nnames, 2, 'export ordinal table', max);
  for (let i = 0; i < nnames; i++) {
    const nameOffset = peRvaToOffsetOrThrow(f, r.u32(names + i * 4), 1, `export name ${i}`);
    const idx = r.u16(ords + i * 2);
    if (idx >= nfuncs) throw new MalformedBinaryError(`export ${i} has ordinal index ${idx} past ${nfuncs} functions`, ords + i * 2);
    const rva = r.u32(funcs + idx * 4);
    yield { nameOffset, ordinal: ordinalBase + idx, rva, forwarded: rva >= dir.rva && rva < dir.rva + dir.size };
  }
}
