/**
 * Mach-O thin (x86_64, arm64, 32-bit x86) and fat/universal files written byte by byte by fixtures/macho-writer.ts
 * — no Debian toolchain makes Mach-O. llvm-objdump / llvm-nm (Debian `llvm`) check that the writer's files are real
 * Mach-O, independently of the parser under test.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NoPluginsError, UnsupportedFormatError, inspect, readMemflowPlugins, type PluginDescriptorInfo } from '../../src/introspect/index.ts';
import { missingCommand } from './fixtures/build.ts';
import { writeFat, writeMachO, type MachoPlugin } from './fixtures/macho-writer.ts';

const PLUGINS: MachoPlugin[] = [
  { exportName: 'MEMFLOW_CONNECTOR_COREDUMP', pluginVersion: 1, name: 'coredump', version: '0.2.1', description: 'core dump connector' },
  { exportName: 'MEMFLOW_OS_DARWIN', pluginVersion: 1, name: 'darwin', version: '0.1.0', description: '' },
];

function expected(arch: PluginDescriptorInfo['architecture']): PluginDescriptorInfo[] {
  return [
    { pluginKind: 'connector', exportName: 'MEMFLOW_CONNECTOR_COREDUMP', fileType: 'mach', architecture: arch, pluginVersion: 1, name: 'coredump', version: '0.2.1', description: 'core dump connector' },
    { pluginKind: 'os', exportName: 'MEMFLOW_OS_DARWIN', fileType: 'mach', architecture: arch, pluginVersion: 1, name: 'darwin', version: '0.1.0', description: '' },
  ];
}

const x86_64 = writeMachO({ cpu: 'x86_64', plugins: PLUGINS, extraExport: 'unrelated_export' });
const arm64 = writeMachO({ cpu: 'arm64', plugins: PLUGINS, exports: 'exports-trie', chainedPointers: true, imageBase: 0x100000000n });
const x86 = writeMachO({ cpu: 'x86', plugins: PLUGINS, exports: 'symtab' });
const fat = writeFat([{ cpu: 'x86_64', data: x86_64 }, { cpu: 'arm64', data: arm64 }]);

describe('thin Mach-O', () => {
  it('x86_64 dylib, exports in LC_DYLD_INFO_ONLY trie', () => {
    const r = inspect(x86_64);
    assert.equal(r.format, 'macho');
    assert.equal(r.arch, 'x86_64');
    assert.equal(r.machine, 0x01000007);
    assert.equal(r.bits, 64);
    assert.equal(r.endianness, 'little');
    assert.equal(r.fileKind, 'dylib');
    assert.deepEqual(r.memflow, expected('x86_64'));
  });

  it('arm64 dylib at 0x100000000, LC_DYLD_EXPORTS_TRIE, chained-fixup pointers', () => {
    const r = inspect(arm64);
    assert.equal(r.format, 'macho');
    assert.equal(r.arch, 'arm64');
    assert.equal(r.machine, 0x0100000c);
    assert.equal(r.bits, 64);
    assert.deepEqual(r.memflow, expected('arm64'));
  });

  it('32-bit x86 dylib, exports only in the nlist table (32-bit descriptor layout)', () => {
    const r = inspect(x86);
    assert.equal(r.arch, 'x86');
    assert.equal(r.bits, 32);
    assert.deepEqual(r.memflow, expected('x86'));
  });

  it('a dylib without plugin exports is refused', () => {
    const none = writeMachO({ cpu: 'arm64', plugins: [], extraExport: 'just_a_function' });
    assert.equal(inspect(none).memflow, undefined);
    assert.throws(() => readMemflowPlugins(none), NoPluginsError);
  });

  it('a big-endian header is read with its byte order', () => {
    const be = Buffer.alloc(28);
    be.writeUInt32BE(0xfeedface, 0);
    be.writeUInt32BE(18, 4); // CPU_TYPE_POWERPC
    be.writeUInt32BE(6, 12);
    const r = inspect(be);
    assert.equal(r.endianness, 'big');
    assert.deepEqual(r.arch, { unknown: 18 });
    assert.equal(r.fileKind, 'dylib');
  });
});

describe('fat / universal Mach-O', () => {
  it('lists each slice and the plugins of every slice', () => {
    const r = inspect(fat);
    assert.equal(r.format, 'macho-fat');
    assert.equal(r.arch, null);
    assert.equal(r.bits, null);
    assert.deepEqual(r.slices, [
      { offset: 0x1000, size: x86_64.length, arch: 'x86_64', cputype: 0x01000007, format: 'macho', bits: 64, endianness: 'little', fileKind: 'dylib' },
      { offset: 0x1000 + Math.ceil(x86_64.length / 0x1000) * 0x1000, size: arm64.length, arch: 'arm64', cputype: 0x0100000c, format: 'macho', bits: 64, endianness: 'little', fileKind: 'dylib' },
    ]);
    assert.deepEqual(r.memflow, [...expected('x86_64'), ...expected('arm64')]);
  });

  it('a non-Mach-O slice (static archive) is listed, not parsed', () => {
    const archive = Buffer.concat([Buffer.from('!<arch>\n'), Buffer.alloc(64, 0x20)]);
    const r = inspect(writeFat([{ cpu: 'x86_64', data: archive }, { cpu: 'arm64', data: arm64 }]));
    assert.equal(r.slices?.[0].format, 'other');
    assert.equal(r.slices?.[0].bits, null);
    assert.deepEqual(r.memflow, expected('arm64'));
  });

  it('a Java class file (same magic, version ≥ 45 where the arch count would be) is not taken for fat Mach-O', () => {
    const cls = Buffer.from([0xca, 0xfe, 0xba, 0xbe, 0x00, 0x00, 0x00, 0x34, 0, 0, 0, 0]);
    assert.throws(() => inspect(cls), UnsupportedFormatError);
  });
});

describe('the writer makes real Mach-O (checked with LLVM tools)', { skip: missingCommand('llvm-objdump', 'llvm') ?? missingCommand('llvm-nm', 'llvm') }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'granary-macho-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, data: Buffer): string => {
    const p = join(dir, name);
    writeFileSync(p, data);
    return p;
  };
  const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

  it('llvm-objdump decodes the export trie with the same names and addresses', () => {
    const out = run('llvm-objdump', ['--macho', '--exports-trie', file('x86_64.dylib', x86_64)]);
    assert.match(out, /0x00004000\s+_MEMFLOW_CONNECTOR_COREDUMP/);
    assert.match(out, /0x00004060\s+_MEMFLOW_OS_DARWIN/);
    assert.match(out, /0x00000F00\s+_unrelated_export/);
  });

  it('llvm-nm lists the exported descriptors of every variant', () => {
    for (const [name, data, addr] of [['x86_64', x86_64, '0000000000004000'], ['arm64', arm64, '0000000100004000'], ['x86', x86, '00004000']] as const) {
      const out = run('llvm-nm', ['-g', file(`${name}.dylib`, data)]);
      assert.match(out, new RegExp(`${addr} S _MEMFLOW_CONNECTOR_COREDUMP`), `${name}: ${out}`);
    }
  });

  it('llvm-objdump reads the fat header and both slices', () => {
    const out = run('llvm-objdump', ['--macho', '--universal-headers', file('fat.dylib', fat)]);
    assert.match(out, /nfat_arch 2/);
    assert.match(out, /cputype CPU_TYPE_X86_64/);
    assert.match(out, /cputype CPU_TYPE_ARM64/);
  });
});
