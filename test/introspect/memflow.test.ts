/**
 * memflow plugin descriptors in real ELF shared libraries and Windows DLLs, compiled during the run from
 * fixtures/*.c with gcc (x86_64, -m32), aarch64-linux-gnu-gcc and mingw-w64 (x86, x86_64). Each toolchain that is
 * missing skips its tests with the apt package to install.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { SHT_DYNSYM, SHT_RELA, elfRelocations, elfSymbolName, elfSymbols, elfVaddrToOffset, parseElf } from '../../src/introspect/elf.ts';
import {
  DEFAULT_LIMITS,
  MalformedBinaryError,
  NoPluginsError,
  inspect,
  readMemflowPlugins,
  scanMemflowPlugins,
  toPluginDescriptorJson,
  type Arch,
  type PluginDescriptorInfo,
} from '../../src/introspect/index.ts';
import { DESCRIPTOR_LAYOUTS } from '../../src/introspect/memflow.ts';
import { SHARED, TOOLCHAINS, build, missing, type Toolchain } from './fixtures/build.ts';

const COREDUMP = {
  pluginKind: 'connector',
  exportName: 'MEMFLOW_CONNECTOR_COREDUMP',
  pluginVersion: 1,
  name: 'coredump',
  version: '0.2.1',
  description: 'win32 coredump connector — reads .dmp files',
} as const;
const QEMU = { pluginKind: 'connector', exportName: 'MEMFLOW_CONNECTOR_QEMU', pluginVersion: 1, name: 'qemu', version: '0.2.3', description: 'qemu process connector' } as const;
const WIN32 = { pluginKind: 'os', exportName: 'MEMFLOW_OS_WIN32', pluginVersion: 2, name: 'win32', version: '0.2.4-beta.1', description: '' } as const;

interface Target {
  label: string;
  tc: Toolchain;
  flags: string[];
  ext: string;
  format: 'elf' | 'pe';
  arch: Arch;
  machine: number;
  bits: 32 | 64;
  fileKind: string;
}

const TARGETS: Target[] = [
  { label: 'ELF x86_64 (gcc)', tc: TOOLCHAINS.gcc, flags: SHARED, ext: 'so', format: 'elf', arch: 'x86_64', machine: 62, bits: 64, fileKind: 'dyn' },
  { label: 'ELF x86 (gcc -m32)', tc: TOOLCHAINS.gcc32, flags: SHARED, ext: 'so', format: 'elf', arch: 'x86', machine: 3, bits: 32, fileKind: 'dyn' },
  { label: 'ELF aarch64 (aarch64-linux-gnu-gcc)', tc: TOOLCHAINS.aarch64, flags: SHARED, ext: 'so', format: 'elf', arch: 'arm64', machine: 183, bits: 64, fileKind: 'dyn' },
  { label: 'PE x86 DLL (i686-w64-mingw32-gcc)', tc: TOOLCHAINS.mingw32, flags: ['-shared', '-O2'], ext: 'dll', format: 'pe', arch: 'x86', machine: 0x14c, bits: 32, fileKind: 'dll' },
  { label: 'PE x86_64 DLL (x86_64-w64-mingw32-gcc)', tc: TOOLCHAINS.mingw64, flags: ['-shared', '-O2'], ext: 'dll', format: 'pe', arch: 'x86_64', machine: 0x8664, bits: 64, fileKind: 'dll' },
];

function lib(t: Target, source: 'connector' | 'two' | 'none', extraFlags: string[] = []): Buffer {
  const out = build(t.tc, { sources: [`${source}.c`], deps: ['plugin.h'], flags: [...t.flags, ...extraFlags], out: `${source}.${t.tc.id}${extraFlags.join('')}.${t.ext}` });
  return readFileSync(out);
}

function expected(t: Target, d: Omit<PluginDescriptorInfo, 'fileType' | 'architecture'>): PluginDescriptorInfo {
  return { ...d, fileType: t.format, architecture: t.arch };
}

for (const t of TARGETS) {
  describe(t.label, { skip: missing(t.tc) }, () => {
    it('reports format, architecture, bitness, endianness and the one connector', () => {
      const r = inspect(lib(t, 'connector'));
      assert.equal(r.format, t.format);
      assert.deepEqual(r.arch, t.arch);
      assert.equal(r.machine, t.machine);
      assert.equal(r.bits, t.bits);
      assert.equal(r.endianness, 'little');
      assert.equal(r.fileKind, t.fileKind);
      assert.equal(r.ebpf, undefined);
      assert.equal(r.memflow?.length, 1);
      const [d] = r.memflow!;
      assert.equal(d.pluginKind, 'connector');
      assert.equal(d.exportName, 'MEMFLOW_CONNECTOR_COREDUMP');
      assert.equal(d.fileType, t.format);
      assert.deepEqual(d.architecture, t.arch);
      assert.equal(d.pluginVersion, 1);
      assert.equal(d.name, 'coredump');
      assert.equal(d.version, '0.2.1');
      assert.equal(d.description, 'win32 coredump connector — reads .dmp files');
    });

    it('serialises the descriptor as memflow-registry JSON (snake_case, serde field order)', () => {
      const [d] = readMemflowPlugins(lib(t, 'connector'));
      const json = toPluginDescriptorJson(d);
      assert.deepEqual(Object.keys(json), ['plugin_kind', 'export_name', 'file_type', 'architecture', 'plugin_version', 'name', 'version', 'description']);
      assert.equal(
        JSON.stringify(json),
        JSON.stringify({
          plugin_kind: 'connector',
          export_name: 'MEMFLOW_CONNECTOR_COREDUMP',
          file_type: t.format,
          architecture: t.arch,
          plugin_version: 1,
          name: 'coredump',
          version: '0.2.1',
          description: 'win32 coredump connector — reads .dmp files',
        }),
      );
    });

    it('finds both plugins of a library exporting a connector and an OS plugin', () => {
      assert.deepEqual(readMemflowPlugins(lib(t, 'two')), [expected(t, QEMU), expected(t, WIN32)]);
    });

    it('refuses a library that exports no plugin (look-alike names do not count)', () => {
      const buf = lib(t, 'none');
      const r = inspect(buf);
      assert.equal(r.format, t.format);
      assert.equal(r.memflow, undefined);
      assert.deepEqual(scanMemflowPlugins(buf), []);
      assert.throws(() => readMemflowPlugins(buf), (e) => e instanceof NoPluginsError && e.code === 'NO_PLUGINS' && /MEMFLOW_CONNECTOR_/.test(e.message));
      assert.throws(() => inspect(buf, { require: 'memflow' }), NoPluginsError);
    });
  });
}

/** File offset of a dynamic symbol's descriptor, and the descriptor's virtual address. */
function descriptorOf(buf: Buffer, name: string): { offset: number; vaddr: bigint; bits: 32 | 64 } {
  const f = parseElf(buf, DEFAULT_LIMITS);
  const dynsym = f.sections.find((s) => s.type === SHT_DYNSYM)!;
  for (const s of elfSymbols(f, dynsym, DEFAULT_LIMITS)) {
    if (elfSymbolName(f, s, DEFAULT_LIMITS) === name) return { offset: elfVaddrToOffset(f, s.value, 8)!, vaddr: s.value, bits: f.bits };
  }
  throw new Error(`no symbol ${name}`);
}

/** Zeroes the three string pointers in place, as lld leaves RELA targets by default: only relocations remain. */
function zeroStringPointers(buf: Buffer, name: string): Buffer {
  const copy = Buffer.from(buf);
  const d = descriptorOf(copy, name);
  const L = DESCRIPTOR_LAYOUTS[d.bits];
  for (const [p] of [L.name, L.version, L.description]) copy.fill(0, d.offset + p, d.offset + p + d.bits / 8);
  return copy;
}

describe('ELF relocations', () => {
  const x64 = TARGETS[0];
  const a64 = TARGETS[2];

  for (const t of [x64, a64]) {
    it(`${t.label}: resolves zeroed string pointers through RELATIVE relocations`, { skip: missing(t.tc) }, () => {
      const patched = zeroStringPointers(lib(t, 'two'), 'MEMFLOW_CONNECTOR_QEMU');
      assert.deepEqual(readMemflowPlugins(patched), [expected(t, QEMU), expected(t, WIN32)]);
    });
  }

  it('refuses a zeroed pointer whose relocation is not RELATIVE', { skip: missing(x64.tc) }, () => {
    const buf = zeroStringPointers(lib(x64, 'connector'), 'MEMFLOW_CONNECTOR_COREDUMP');
    const f = parseElf(buf, DEFAULT_LIMITS);
    const d = descriptorOf(buf, 'MEMFLOW_CONNECTOR_COREDUMP');
    const rela = f.sections.find((s) => s.type === SHT_RELA)!;
    let i = 0;
    for (const rel of elfRelocations(f, rela, DEFAULT_LIMITS)) {
      if (rel.offset === d.vaddr + 0x18n) buf.writeUInt32LE(1, rela.offset + i * 24 + 8); // R_X86_64_64
      i++;
    }
    assert.throws(() => readMemflowPlugins(buf), (e) => e instanceof MalformedBinaryError && /unsupported relocation type 1/.test(e.message));
  });

  it('reads a library linked with packed relative relocations (-z pack-relative-relocs)', { skip: missing(x64.tc) }, (t) => {
    let buf: Buffer;
    try {
      buf = lib(x64, 'connector', ['-Wl,-z,pack-relative-relocs']);
    } catch (e) {
      t.skip(`the linker does not support -z pack-relative-relocs (binutils >= 2.38): ${(e as Error).message.split('\n')[0]}`);
      return;
    }
    assert.deepEqual(readMemflowPlugins(buf), [expected(x64, COREDUMP)]);
  });
});
