/**
 * Hostile and broken inputs: truncated headers, tables pointing outside the file, absurd counts, unterminated
 * strings, trie and relocation loops, tar/zstd/gzip bombs — each must end quickly in a typed IntrospectError
 * (MalformedBinaryError or LimitExceededError). Then a seeded fuzz loop mutates valid fixtures and accepts only
 * results or typed errors, never another exception or a hang.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import * as zlib from 'node:zlib';
import { SHT_DYNSYM, SHT_RELA, elfSection, elfSymbolName, elfSymbols, elfVaddrToOffset, parseElf, type ElfFile } from '../../src/introspect/elf.ts';
import {
  DEFAULT_LIMITS,
  IntrospectError,
  LimitExceededError,
  MalformedBinaryError,
  inspect,
  isIntrospectError,
  readMemflowPlugins,
} from '../../src/introspect/index.ts';
import { BinaryReader, checkTable } from '../../src/introspect/reader.ts';
import { zstdSupported } from '../../src/introspect/tar.ts';
import { SHARED, TOOLCHAINS, build, missing } from './fixtures/build.ts';
import { writeFat, writeMachO } from './fixtures/macho-writer.ts';
import { tarHeader, writeTar } from './fixtures/tar-writer.ts';

type ErrorClass = new (...args: never[]) => IntrospectError;

/** `fn` must throw one of `classes` within `maxMs`. */
function rejects(fn: () => unknown, classes: ErrorClass | ErrorClass[], pattern?: RegExp, maxMs = 1000): void {
  const list = Array.isArray(classes) ? classes : [classes];
  const t0 = performance.now();
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  const ms = performance.now() - t0;
  assert.ok(thrown !== undefined, 'expected an error, got a result');
  assert.ok(list.some((c) => thrown instanceof c), `expected ${list.map((c) => c.name).join('|')}, got ${String(thrown)}`);
  if (pattern) assert.match((thrown as Error).message, pattern);
  assert.ok(ms < maxMs, `took ${ms.toFixed(0)} ms`);
}

const MALFORMED = MalformedBinaryError;
const TYPED: ErrorClass[] = [MalformedBinaryError, LimitExceededError];

const so64 = (): Buffer => readFileSync(build(TOOLCHAINS.gcc, { sources: ['connector.c'], deps: ['plugin.h'], flags: SHARED, out: 'connector.gcc.so' }));
const dll64 = (): Buffer => readFileSync(build(TOOLCHAINS.mingw64, { sources: ['two.c'], deps: ['plugin.h'], flags: ['-shared', '-O2'], out: 'two.mingw64.dll' }));
const dll32 = (): Buffer => readFileSync(build(TOOLCHAINS.mingw32, { sources: ['connector.c'], deps: ['plugin.h'], flags: ['-shared', '-O2'], out: 'connector.mingw32.dll' }));
const bpf = (): Buffer => readFileSync(build(TOOLCHAINS.bpf, { sources: ['probe.bpf.c'], flags: ['-g', '-c'], out: 'probe.bpf.o' }));
const MACHO_PLUGINS = [{ exportName: 'MEMFLOW_CONNECTOR_X', pluginVersion: 1, name: 'x', version: '1.0.0', description: 'x connector' }];
const macho = (): Buffer => writeMachO({ cpu: 'x86_64', plugins: MACHO_PLUGINS });

/** ELF section header field patcher (64-bit little-endian). */
function patchSection(buf: Buffer, f: ElfFile, name: string, field: 'offset' | 'size' | 'link', value: number | bigint): Buffer {
  const copy = Buffer.from(buf);
  const shoff = Number(copy.readBigUInt64LE(40));
  const s = f.sections.find((x) => x.name === name)!;
  const at = shoff + s.index * 64 + { offset: 24, size: 32, link: 40 }[field];
  if (field === 'link') copy.writeUInt32LE(Number(value), at);
  else copy.writeBigUInt64LE(BigInt(value), at);
  return copy;
}

function descriptor(buf: Buffer): { f: ElfFile; offset: number; vaddr: bigint; nameOffset: number; symOffset: number } {
  const f = parseElf(buf, DEFAULT_LIMITS);
  const dynsym = f.sections.find((s) => s.type === SHT_DYNSYM)!;
  for (const s of elfSymbols(f, dynsym, DEFAULT_LIMITS)) {
    if (elfSymbolName(f, s, DEFAULT_LIMITS) === 'MEMFLOW_CONNECTOR_COREDUMP') {
      return { f, offset: elfVaddrToOffset(f, s.value, 0x60)!, vaddr: s.value, nameOffset: s.nameOffset, symOffset: dynsym.offset + s.index * 24 };
    }
  }
  throw new Error('fixture has no descriptor');
}

describe('reader', () => {
  const r = new BinaryReader(Buffer.from([1, 2, 3, 4, 0x41, 0x42]));
  it('every out-of-range read throws MalformedBinaryError with the offset', () => {
    rejects(() => r.u32(3), MALFORMED, /at 0x3/);
    rejects(() => r.u64(0), MALFORMED);
    rejects(() => r.u8(-1), MALFORMED);
    rejects(() => r.bytes(2, 2 ** 60), MALFORMED);
    rejects(() => r.u16(Number.NaN), MALFORMED);
    rejects(() => r.cstr(4, 100), MALFORMED, /no NUL terminator/);
    rejects(() => new BinaryReader(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])).uleb128(0), MALFORMED);
    rejects(() => new BinaryReader(Buffer.alloc(8, 0xff)).u64n(0), MALFORMED, /impossibly large/);
  });
  it('reads both byte orders, u64 as bigint or safe number, fixed and bounded strings', () => {
    const b = Buffer.from([0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0, 0x68, 0x69, 0, 0x21]);
    const le = new BinaryReader(b);
    const be = le.as('big');
    assert.equal(le.u16(0), 0x3412);
    assert.equal(be.u16(0), 0x1234);
    assert.equal(le.u32(0), 0x78563412);
    assert.equal(be.i32(0), 0x12345678);
    assert.equal(le.u64(0), 0x78563412n);
    assert.equal(le.u64n(0), 0x78563412);
    assert.equal(be.ptrn(0, 32), 0x12345678);
    assert.equal(le.cstr(8, 4), 'hi');
    rejects(() => le.cstr(8, 2), MALFORMED, /no NUL terminator within 0x2 bytes/);
    assert.equal(le.fixedStr(8, 4), 'hi');
    assert.equal(le.sub(8, 4).u8(3), 0x21);
    rejects(() => le.sub(8, 4).u8(4), MALFORMED, /at offset 0xc/);
    assert.deepEqual(new BinaryReader(Buffer.from([0xe5, 0x8e, 0x26])).uleb128(0), { value: 624485, next: 3 });
  });

  it('a count whose table cannot fit fails before any loop; a limit fails as LimitExceededError', () => {
    rejects(() => checkTable(r, 0, 2 ** 31, 24, 'symbols'), MALFORMED);
    rejects(() => checkTable(r, 0, 2 ** 31, 24, 'symbols', { limit: 'maxSymbols', value: 10 }), LimitExceededError, /maxSymbols=10/);
  });
});

describe('hostile ELF', { skip: missing(TOOLCHAINS.gcc) }, () => {
  it('truncated headers', () => {
    const buf = so64();
    rejects(() => inspect(buf.subarray(0, 10)), MALFORMED);
    rejects(() => inspect(buf.subarray(0, 63)), MALFORMED, /ELF header/);
    rejects(() => inspect(buf.subarray(0, Math.floor(buf.length * 0.6))), MALFORMED);
  });

  it('section header table outside the file, or with an impossible count', () => {
    const buf = Buffer.from(so64());
    const far = Buffer.from(buf);
    far.writeBigUInt64LE(0xffff_ffff_ffffn, 40);
    rejects(() => inspect(far), MALFORMED, /section header table/);
    const many = Buffer.from(buf);
    many.writeUInt16LE(0x3000, 60); // under maxSections, but 0x3000 × 64 bytes are not in the file
    rejects(() => inspect(many), MALFORMED, /section header table/);
    many.writeUInt16LE(0xfeff, 60);
    rejects(() => inspect(many), LimitExceededError, /maxSections/);
    const tiny = Buffer.from(buf);
    tiny.writeUInt16LE(8, 58); // e_shentsize
    rejects(() => inspect(tiny), MALFORMED, /e_shentsize/);
    // Extended numbering (e_shnum = 0): the count comes from section 0 and is huge.
    const ext = Buffer.from(buf);
    ext.writeUInt16LE(0, 60);
    ext.writeBigUInt64LE(1n << 40n, Number(ext.readBigUInt64LE(40)) + 32);
    rejects(() => inspect(ext), TYPED);
  });

  it('symbol table pointing outside the file, at a bogus string table, or with a huge size', () => {
    const buf = so64();
    const f = parseElf(buf, DEFAULT_LIMITS);
    rejects(() => inspect(patchSection(buf, f, '.dynsym', 'offset', buf.length - 8)), MALFORMED, /outside/);
    rejects(() => inspect(patchSection(buf, f, '.dynsym', 'size', 1n << 40n)), MALFORMED);
    rejects(() => inspect(patchSection(buf, f, '.dynsym', 'link', 0xffff)), MALFORMED, /string table/);
    const d = descriptor(buf);
    const badName = Buffer.from(buf);
    badName.writeUInt32LE(0x7fff_0000, d.symOffset);
    rejects(() => inspect(badName), MALFORMED, /past its string table/);
  });

  it('a string table without terminators', () => {
    const buf = Buffer.from(so64());
    const d = descriptor(buf);
    const dynstr = elfSection(d.f, '.dynstr')!;
    buf.fill(0x58, d.nameOffset + 'MEMFLOW_CONNECTOR_'.length, dynstr.offset + dynstr.size); // "…_XXXX" to the end
    rejects(() => inspect(buf), MALFORMED, /no NUL terminator/);
  });

  it('descriptor and string pointers outside the mapped file', () => {
    const buf = so64();
    const d = descriptor(buf);
    const unmapped = Buffer.from(buf);
    unmapped.writeBigUInt64LE(0x7fff_0000_0000n, d.symOffset + 8); // st_value
    rejects(() => inspect(unmapped), MALFORMED, /not backed by the file/);
    const wild = Buffer.from(buf);
    wild.writeBigUInt64LE(0x7fff_0000n, d.offset + 0x18);
    rejects(() => inspect(wild), MALFORMED, /name of MEMFLOW_CONNECTOR_COREDUMP points at 0x7fff0000/);
    const long = Buffer.from(buf);
    long.writeBigUInt64LE(1n << 40n, d.offset + 0x20);
    rejects(() => inspect(long), MALFORMED, /bytes long/);
    const notUtf8 = Buffer.from(buf);
    const nameAt = elfVaddrToOffset(d.f, notUtf8.readBigUInt64LE(d.offset + 0x18), 8)!;
    notUtf8.fill(0xff, nameAt, nameAt + 8);
    rejects(() => inspect(notUtf8), MALFORMED, /not valid UTF-8/);
  });

  it('relocation table with an absurd count; a relocation pointing back into the descriptor', () => {
    const buf = so64();
    const f = parseElf(buf, DEFAULT_LIMITS);
    rejects(() => inspect(patchSection(buf, f, '.rela.dyn', 'size', 0x7fff_ffff_ffffn)), MALFORMED);
    // Zero the name pointer and point its RELATIVE relocation at the descriptor itself: resolved once, never chased.
    const loop = Buffer.from(buf);
    const d = descriptor(loop);
    loop.writeBigUInt64LE(0n, d.offset + 0x18);
    loop.writeBigUInt64LE(4n, d.offset + 0x20);
    const rela = f.sections.find((s) => s.type === SHT_RELA)!;
    for (let o = rela.offset; o < rela.offset + rela.size; o += 24) {
      if (loop.readBigUInt64LE(o) === d.vaddr + 0x18n) loop.writeBigUInt64LE(d.vaddr, o + 16);
    }
    const t0 = performance.now();
    const [p] = readMemflowPlugins(loop);
    assert.equal(p.name, '\u0001\0\0\0'.replace(/\0+$/, ''));
    assert.ok(performance.now() - t0 < 1000);
  });
});

describe('worst-case cost of valid-sized hostile files', () => {
  it('16000 section headers describing the same 1 MiB relocation table stop at maxSymbols', { skip: missing(TOOLCHAINS.gcc) }, () => {
    const base = so64();
    const f = parseElf(base, DEFAULT_LIMITS);
    const shoff = Number(base.readBigUInt64LE(40));
    const rela = f.sections.find((s) => s.type === SHT_RELA)!;
    const region = Buffer.alloc(1 << 20);
    const count = 16_000;
    const table = Buffer.alloc(count * 64);
    base.copy(table, 0, shoff, shoff + f.sections.length * 64);
    const relaHeader = Buffer.from(base.subarray(shoff + rela.index * 64, shoff + rela.index * 64 + 64));
    relaHeader.writeBigUInt64LE(BigInt(base.length), 24);
    relaHeader.writeBigUInt64LE(BigInt(region.length), 32);
    for (let i = f.sections.length; i < count; i++) relaHeader.copy(table, i * 64);
    const out = Buffer.concat([base, region, table]);
    out.writeBigUInt64LE(BigInt(base.length + region.length), 40);
    out.writeUInt16LE(count, 60);
    // ~1M relocation entries are walked before the limit: allow a slow CI machine some seconds.
    rejects(() => inspect(out), LimitExceededError, /relocations/, 5000);
  });

  it('500k Mach-O symbols naming one long plugin export are read once', () => {
    const buf = macho();
    const symtab = findCommand(buf, 0x2);
    const n = 500_000;
    const name = Buffer.from(`_MEMFLOW_CONNECTOR_${'X'.repeat(4000)}\0`);
    const syms = Buffer.alloc(n * 16);
    for (let i = 0; i < n; i++) {
      syms.writeUInt32LE(1, i * 16); // all share one string
      syms[i * 16 + 4] = 0x0f;
      syms[i * 16 + 5] = 3;
      syms.writeBigUInt64LE(0x4000n, i * 16 + 8);
    }
    const strtab = Buffer.concat([Buffer.from(' '), name]);
    const out = Buffer.concat([buf, syms, strtab]);
    out.writeUInt32LE(buf.length, symtab + 8);
    out.writeUInt32LE(n, symtab + 12);
    out.writeUInt32LE(buf.length + syms.length, symtab + 16);
    out.writeUInt32LE(strtab.length, symtab + 20);
    const t0 = performance.now();
    const r = inspect(out);
    assert.ok(performance.now() - t0 < 1000);
    // The writer's own export plus the long one (both point at the same descriptor).
    assert.deepEqual(r.memflow?.map((p) => p.exportName.length), ['MEMFLOW_CONNECTOR_X'.length, 'MEMFLOW_CONNECTOR_'.length + 4000]);
  });
});

describe('hostile PE', { skip: missing(TOOLCHAINS.mingw64) }, () => {
  const peOff = (b: Buffer): number => b.readUInt32LE(0x3c);

  it('truncated or misplaced headers', () => {
    const buf = dll64();
    rejects(() => inspect(buf.subarray(0, 0x40)), MALFORMED);
    const far = Buffer.from(buf);
    far.writeUInt32LE(0xffff_fff0, 0x3c);
    rejects(() => inspect(far), MALFORMED, /PE signature/);
    rejects(() => inspect(buf.subarray(0, peOff(buf) + 30)), MALFORMED);
  });

  it('section table and export directory with impossible counts or RVAs', () => {
    const buf = dll64();
    const coff = peOff(buf) + 4;
    const sects = Buffer.from(buf);
    sects.writeUInt16LE(0x3000, coff + 2);
    rejects(() => inspect(sects), MALFORMED, /section table/);
    sects.writeUInt16LE(0xffff, coff + 2);
    rejects(() => inspect(sects), LimitExceededError, /maxSections/);
    // Export directory: data directory 0 of the PE32+ optional header.
    const dd = coff + 20 + 112;
    const exportAt = Buffer.from(buf);
    exportAt.writeUInt32LE(0x7fff_0000, dd);
    rejects(() => inspect(exportAt), MALFORMED, /export directory/);
    // NumberOfNames absurd: the name table cannot fit.
    const rva = buf.readUInt32LE(dd);
    const f = inspect(buf); // sanity: valid before patching
    assert.equal(f.memflow?.length, 2);
    const secTable = coff + 20 + buf.readUInt16LE(coff + 16);
    let dirOff = -1;
    for (let i = 0; i < buf.readUInt16LE(coff + 2); i++) {
      const s = secTable + i * 40;
      const va = buf.readUInt32LE(s + 12);
      const raw = buf.readUInt32LE(s + 16);
      if (rva >= va && rva < va + raw) dirOff = buf.readUInt32LE(s + 20) + (rva - va);
    }
    const names = Buffer.from(buf);
    names.writeUInt32LE(0x7fff_ffff, dirOff + 24);
    rejects(() => inspect(names), TYPED);
    const funcs = Buffer.from(buf);
    funcs.writeUInt32LE(0x7fff_ffff, dirOff + 20);
    rejects(() => inspect(funcs), TYPED);
  });
});

describe('hostile Mach-O', () => {
  it('truncated header and load commands', () => {
    const buf = macho();
    rejects(() => inspect(buf.subarray(0, 20)), MALFORMED);
    rejects(() => inspect(buf.subarray(0, 200)), MALFORMED, /load commands/);
  });

  it('absurd command count, zero-size command, huge section count, symbol table outside', () => {
    const buf = macho();
    const ncmds = Buffer.from(buf);
    ncmds.writeUInt32LE(0xffff_ffff, 16);
    rejects(() => inspect(ncmds), MALFORMED, /cannot fit/);
    const zero = Buffer.from(buf);
    zero.writeUInt32LE(0, 32 + 4);
    rejects(() => inspect(zero), MALFORMED, /invalid size 0/);
    const nsects = Buffer.from(buf);
    nsects.writeUInt32LE(0x7fff_ffff, 32 + 64);
    rejects(() => inspect(nsects), TYPED);
    const symtab = findCommand(buf, 0x2);
    const nsyms = Buffer.from(buf);
    nsyms.writeUInt32LE(0x7fff_ffff, symtab + 12);
    rejects(() => inspect(nsyms), TYPED);
    const stroff = Buffer.from(buf);
    stroff.writeUInt32LE(0x7fff_0000, symtab + 16);
    rejects(() => inspect(stroff), MALFORMED, /string table/);
  });

  it('an export trie that loops back to the root', () => {
    const buf = Buffer.from(macho());
    const info = findCommand(buf, 0x80000022);
    const trieOff = buf.readUInt32LE(info + 40);
    Buffer.from([0x00, 0x01, ...Buffer.from('_MEMFLOW_\0'), 0x00]).copy(buf, trieOff);
    rejects(() => inspect(buf), MALFORMED, /loops back/);
  });

  it('an export trie chain deeper than any symbol name', () => {
    const buf = macho();
    const depth = 6000;
    const uleb3 = (n: number): number[] => [(n & 0x7f) | 0x80, ((n >> 7) & 0x7f) | 0x80, (n >> 14) & 0x7f];
    const parts: number[] = [0x00, 0x01, ...Buffer.from('_MEMFLOW_CONNECTOR_\0')];
    // Each node has one child with label "A"; offsets as 3-byte ULEB128 (< 2^21).
    const nodeSize = 1 + 1 + 2 + 3; // terminal size, child count, "A\0", child offset
    const first = parts.length + 3;
    parts.push(...uleb3(first));
    for (let i = 0; i < depth; i++) parts.push(0x00, 0x01, 0x41, 0x00, ...uleb3(first + (i + 1) * nodeSize));
    parts.push(0x00, 0x00);
    const trie = Buffer.from(parts);
    const out = Buffer.concat([buf, trie]);
    const info = findCommand(out, 0x80000022);
    out.writeUInt32LE(buf.length, info + 40);
    out.writeUInt32LE(trie.length, info + 44);
    rejects(() => inspect(out), MALFORMED, /symbol name is too long/);
  });

  it('fat headers with impossible counts or slices outside the file', () => {
    const fat = writeFat([{ cpu: 'x86_64', data: macho() }]);
    rejects(() => inspect(fat.subarray(0, 12)), MALFORMED);
    const many = Buffer.from(fat);
    many.writeUInt32BE(30, 4);
    rejects(() => inspect(many), TYPED);
    const far = Buffer.from(fat);
    far.writeUInt32BE(0x7fff_0000, 8 + 8);
    rejects(() => inspect(far), MALFORMED, /fat slice 0/);
    const self = Buffer.from(fat);
    self.writeUInt32BE(0, 8 + 8); // slice 0 overlapping the fat header
    rejects(() => inspect(self), MALFORMED, /overlaps/);
  });
});

function findCommand(buf: Buffer, cmd: number): number {
  let o = 32;
  for (let i = 0; i < buf.readUInt32LE(16); i++) {
    if (buf.readUInt32LE(o) === cmd) return o;
    o += buf.readUInt32LE(o + 4);
  }
  throw new Error(`no load command 0x${cmd.toString(16)}`);
}

describe('hostile eBPF objects', { skip: missing(TOOLCHAINS.bpf) }, () => {
  it('BTF with an unknown kind or a type section outside the data', () => {
    const buf = bpf();
    const f = parseElf(buf, DEFAULT_LIMITS);
    const btf = elfSection(f, '.BTF')!;
    const hdrLen = buf.readUInt32LE(btf.offset + 4);
    const kind = Buffer.from(buf);
    kind.writeUInt32LE(0x1f << 24, btf.offset + hdrLen + buf.readUInt32LE(btf.offset + 8) + 4); // first type's info
    rejects(() => inspect(kind), MALFORMED, /unknown BTF kind/);
    const len = Buffer.from(buf);
    len.writeUInt32LE(0x7fff_ffff, btf.offset + 12);
    rejects(() => inspect(len), MALFORMED, /BTF type section/);
  });

  it('license without terminator; version section too small', () => {
    const buf = bpf();
    const f = parseElf(buf, DEFAULT_LIMITS);
    const lic = elfSection(f, 'license')!;
    const noNul = Buffer.from(buf);
    noNul.fill(0x47, lic.offset, lic.offset + lic.size);
    rejects(() => inspect(noNul), MALFORMED, /license/);
    rejects(() => inspect(patchSection(buf, f, 'version', 'size', 2)), MALFORMED, /version/);
  });
});

describe('bundle bombs and broken tars', () => {
  const small = { limits: { maxBundleBytes: 1 << 20 } };

  it('a .tar.gz expanding past maxBundleBytes stops at the limit', () => {
    const bomb = zlib.gzipSync(Buffer.concat([tarHeader({ path: 'a.o', declaredSize: 16 << 20 }), Buffer.alloc(16 << 20)]));
    assert.ok(bomb.length < 64 * 1024);
    rejects(() => inspect(bomb, small), LimitExceededError, /maxBundleBytes=1048576/);
  });

  it('a .tar.zst expanding past maxBundleBytes stops at the limit', { skip: zstdSupported ? false : 'this Node.js has no zlib zstd' }, () => {
    const z = zlib as unknown as { zstdCompressSync(b: Buffer): Buffer };
    const bomb = z.zstdCompressSync(Buffer.concat([tarHeader({ path: 'a.o', declaredSize: 16 << 20 }), Buffer.alloc(16 << 20)]));
    assert.ok(bomb.length < 64 * 1024);
    rejects(() => inspect(bomb, small), LimitExceededError, /maxBundleBytes/);
  });

  it('a zstd frame demanding a 2 GiB window is refused without allocating it', { skip: zstdSupported ? false : 'this Node.js has no zlib zstd' }, () => {
    // magic, frame header descriptor (no single segment, no content size), window descriptor 2^31, then junk.
    const frame = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (31 - 10) << 3, 0x01, 0x00, 0x00, 0x41]);
    rejects(() => inspect(frame), TYPED);
  });

  it('entry-count and content-size bombs', () => {
    const many = writeTar(Array.from({ length: 1100 }, (_, i) => ({ path: `f${i}` })));
    rejects(() => inspect(many), LimitExceededError, /maxTarEntries=1024/);
    const big = writeTar(Array.from({ length: 4 }, (_, i) => ({ path: `f${i}`, data: Buffer.alloc(1 << 20) })));
    rejects(() => inspect(big, { limits: { maxBundleContentBytes: 2 << 20 } }), LimitExceededError, /maxBundleContentBytes/);
  });

  it('lying sizes, bad checksums, non-octal fields, broken pax records, corrupt compression', () => {
    rejects(() => inspect(writeTar([{ path: 'a', data: Buffer.alloc(10), declaredSize: 1 << 30 }], { noTrailer: true })), MALFORMED, /tar entry data/);
    const bad = writeTar([{ path: 'a', data: Buffer.alloc(10) }, { path: 'b', data: Buffer.alloc(10), badChecksum: true }]);
    rejects(() => inspect(bad), MALFORMED, /checksum/);
    const notOctal = writeTar([{ path: 'a', data: Buffer.alloc(10) }, { path: 'b' }]);
    notOctal.write('9', 1024 + 124);
    fixChecksum(notOctal, 1024);
    rejects(() => inspect(notOctal), MALFORMED, /not octal/);
    const pax = writeTar([{ path: 'a', data: Buffer.alloc(10) }, { path: 'PaxHeader', type: 'x', data: Buffer.from('99999 path=x\n') }, { path: 'b' }]);
    rejects(() => inspect(pax), MALFORMED, /pax/);
    const gz = zlib.gzipSync(writeTar([{ path: 'a', data: Buffer.alloc(10) }]));
    gz[gz.length - 12] ^= 0xff;
    rejects(() => inspect(gz), TYPED);
  });
});

function fixChecksum(buf: Buffer, off: number): void {
  buf.write('        ', off + 148);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += buf[off + i];
  buf.write(`${sum.toString(8).padStart(6, '0')}\0 `, off + 148);
}

/** mulberry32: a small seeded PRNG, so a failing mutation can be replayed from its seed and iteration. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('fuzz: mutated fixtures yield results or typed errors only', () => {
  const SEED = 0x5eed;
  const ITERATIONS = 250;
  const fixtures: [string, string | undefined, () => Buffer][] = [
    ['ELF x86_64 .so', missing(TOOLCHAINS.gcc), so64],
    ['PE x86_64 DLL', missing(TOOLCHAINS.mingw64), dll64],
    ['PE x86 DLL', missing(TOOLCHAINS.mingw32), dll32],
    ['Mach-O x86_64', undefined, macho],
    ['fat Mach-O', undefined, () => writeFat([{ cpu: 'x86_64', data: macho() }, { cpu: 'arm64', data: writeMachO({ cpu: 'arm64', plugins: MACHO_PLUGINS, exports: 'exports-trie' }) }])],
    ['eBPF object', missing(TOOLCHAINS.bpf), bpf],
    ['tar bundle', missing(TOOLCHAINS.bpf), () => writeTar([{ path: 'p.o', data: bpf() }, { path: 'r.txt', data: Buffer.from('x') }])],
  ];
  for (const [label, skip, make] of fixtures) {
    it(`${label}: ${ITERATIONS} seeded mutations`, { skip }, () => {
      const original = make();
      const rand = prng(SEED ^ label.length);
      const int = (n: number): number => Math.floor(rand() * n);
      let results = 0;
      let errors = 0;
      let slowest = 0;
      for (let i = 0; i < ITERATIONS; i++) {
        let buf = Buffer.from(original);
        const mode = int(4);
        if (mode === 0) for (let k = 0, n = 1 + int(4); k < n; k++) buf[int(buf.length)] = int(256);
        else if (mode === 1) for (let k = 0, n = 1 + int(4); k < n; k++) buf[int(Math.min(buf.length, 1024))] = int(256);
        else if (mode === 2) {
          const at = int(buf.length - 4) & ~3;
          buf.writeUInt32LE([0, 0xffffffff, 0x7fffffff, 0x80000000, int(2 ** 32)][int(5)], at);
        } else buf = buf.subarray(0, int(buf.length));
        const t0 = performance.now();
        try {
          inspect(buf);
          results++;
        } catch (e) {
          if (!isIntrospectError(e)) assert.fail(`${label} mutation ${i} (seed ${SEED}, mode ${mode}) threw ${(e as Error)?.stack ?? e}`);
          errors++;
        }
        slowest = Math.max(slowest, performance.now() - t0);
      }
      assert.equal(results + errors, ITERATIONS);
      assert.ok(slowest < 1000, `slowest mutation took ${slowest.toFixed(0)} ms`);
    });
  }
});
