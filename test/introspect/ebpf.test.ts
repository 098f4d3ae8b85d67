/**
 * eBPF objects compiled during the run with `clang -target bpf -g -O2` (Debian clang + libbpf-dev): programs and
 * their libbpf types, BTF-defined and legacy maps, license, version, BTF/CO-RE; and bundles of them as .tar (GNU
 * tar and fixtures/tar-writer.ts), .tar.gz and .tar.zst.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import * as zlib from 'node:zlib';
import { matchBpfSection } from '../../src/introspect/bpf-sections.ts';
import {
  NoEbpfObjectsError,
  UnsupportedFormatError,
  inspect,
  inspectEbpfBundle,
  inspectEbpfObject,
  type EbpfObjectInfo,
} from '../../src/introspect/index.ts';
import { zstdSupported } from '../../src/introspect/tar.ts';
import { TOOLCHAINS, build, missing, missingCommand } from './fixtures/build.ts';
import { writeTar } from './fixtures/tar-writer.ts';

const bpfMissing = missing(TOOLCHAINS.bpf);
const probe = (): Buffer => readFileSync(build(TOOLCHAINS.bpf, { sources: ['probe.bpf.c'], flags: ['-g', '-c'], out: 'probe.bpf.o' }));
const legacy = (): Buffer => readFileSync(build(TOOLCHAINS.bpf, { sources: ['legacy.bpf.c'], flags: ['-c'], out: 'legacy.bpf.o' }));

function assertProbe(o: EbpfObjectInfo): void {
  assert.equal(o.endianness, 'little');
  assert.deepEqual(
    o.programs.map(({ instructions, ...p }) => p),
    [
      { name: 'trace_open', section: 'kprobe/do_sys_openat2', progType: 'kprobe', attachType: null, kind: 'kprobe', target: 'do_sys_openat2', sleepable: false },
      { name: 'trace_open_ret', section: 'kretprobe/do_sys_openat2', progType: 'kprobe', attachType: null, kind: 'kretprobe', target: 'do_sys_openat2', sleepable: false },
      { name: 'trace_exec', section: 'tracepoint/syscalls/sys_enter_execve', progType: 'tracepoint', attachType: null, kind: 'tracepoint', target: 'syscalls/sys_enter_execve', sleepable: false },
      { name: 'xdp_pass', section: 'xdp', progType: 'xdp', attachType: 'xdp', kind: 'xdp', target: null, sleepable: false },
      { name: 'on_connect', section: 'fentry/tcp_v4_connect', progType: 'tracing', attachType: 'trace_fentry', kind: 'fentry', target: 'tcp_v4_connect', sleepable: false },
    ],
  );
  // `return 0;` is two instructions (r0 = 0; exit); the others are longer, by a compiler-dependent amount.
  const insns = Object.fromEntries(o.programs.map((p) => [p.name, p.instructions]));
  assert.equal(insns.trace_open_ret, 2);
  assert.equal(insns.xdp_pass, 2);
  assert.ok(insns.trace_open > 10 && insns.trace_exec > 10, JSON.stringify(insns));
  assert.deepEqual(o.maps, [
    { name: 'counts', type: 'hash', typeId: 1, keySize: 4, valueSize: 8, maxEntries: 1024, flags: null, pinning: null, source: 'btf' },
    { name: 'events', type: 'ringbuf', typeId: 27, keySize: null, valueSize: null, maxEntries: 256 * 1024, flags: null, pinning: 1, source: 'btf' },
    { name: 'scratch', type: 'percpu_array', typeId: 6, keySize: 4, valueSize: 20, maxEntries: 1, flags: 128, pinning: null, source: 'btf' },
  ]);
  assert.equal(o.license, 'Dual BSD/GPL');
  assert.equal(o.kernelVersion, 0x050f00);
  assert.equal(o.kernelVersionString, '5.15.0');
  assert.equal(o.btf, true);
  assert.equal(o.btfExt, true);
  assert.equal(o.coreRelocations, 1);
  assert.deepEqual(o.dataSections, ['.rodata']);
}

describe('eBPF objects (clang -target bpf)', { skip: bpfMissing }, () => {
  it('kprobe, kretprobe, tracepoint, xdp and fentry programs; BTF maps; license; version; BTF + CO-RE', () => {
    const r = inspect(probe());
    assert.equal(r.format, 'elf');
    assert.deepEqual(r.arch, { unknown: 247 });
    assert.equal(r.machine, 247);
    assert.equal(r.bits, 64);
    assert.equal(r.endianness, 'little');
    assert.equal(r.fileKind, 'rel');
    assert.equal(r.memflow, undefined);
    assertProbe(r.ebpf!);
  });

  it('legacy `maps` definitions, socket and classifier programs, no BTF, no version', () => {
    const o = inspectEbpfObject(legacy());
    assert.deepEqual(o.programs, [
      { name: 'count_packets', section: 'socket', progType: 'socket_filter', attachType: null, kind: 'socket', target: null, sleepable: false, instructions: o.programs[0].instructions },
      { name: 'tc_ingress', section: 'classifier', progType: 'sched_cls', attachType: null, kind: 'classifier', target: null, sleepable: false, instructions: 2 },
    ]);
    assert.deepEqual(o.maps, [
      { name: 'packets', type: 'array', typeId: 2, keySize: 4, valueSize: 8, maxEntries: 256, flags: 0, pinning: null, source: 'legacy' },
      { name: 'flows', type: 'lru_hash', typeId: 9, keySize: 16, valueSize: 8, maxEntries: 4096, flags: 0, pinning: null, source: 'legacy' },
    ]);
    assert.equal(o.license, 'GPL');
    assert.equal(o.kernelVersion, null);
    assert.equal(o.kernelVersionString, null);
    assert.equal(o.btf, false);
    assert.equal(o.btfExt, false);
    assert.equal(o.coreRelocations, 0);
    assert.deepEqual(o.dataSections, []);
  });

  it('a non-BPF ELF is refused by inspectEbpfObject and by inspect(require: ebpf)', { skip: missing(TOOLCHAINS.gcc) }, () => {
    const so = readFileSync(build(TOOLCHAINS.gcc, { sources: ['none.c'], deps: ['plugin.h'], flags: ['-shared', '-fPIC', '-O2'], out: 'none.gcc.so' }));
    assert.throws(() => inspectEbpfObject(so), UnsupportedFormatError);
    assert.throws(() => inspect(so, { require: 'ebpf' }), NoEbpfObjectsError);
  });
});

describe('eBPF bundles', { skip: bpfMissing }, () => {
  const bundle = (): Buffer =>
    writeTar([
      { path: 'bundle/', type: '5' },
      { path: 'bundle/probe.bpf.o', data: probe() },
      { path: 'bundle/README', data: Buffer.from('not an object\n') },
      { path: 'bundle/legacy.bpf.o', data: legacy() },
    ]);

  const checkBundle = (buf: Buffer, compression: string): void => {
    const r = inspect(buf, { require: 'ebpf' });
    assert.equal(r.format, 'tar');
    assert.equal(r.arch, null);
    const b = r.bundle!;
    assert.equal(b.compression, compression);
    assert.deepEqual(b.entries.map((e) => [e.path, e.size, e.object !== undefined]), [
      ['bundle/probe.bpf.o', probe().length, true],
      ['bundle/README', 14, false],
      ['bundle/legacy.bpf.o', legacy().length, true],
    ]);
    assertProbe(b.entries[0].object!);
    assert.equal(b.entries[2].object?.maps[0].name, 'packets');
  };

  it('.tar', () => checkBundle(bundle(), 'none'));
  it('.tar.gz', () => checkBundle(gzipSync(bundle()), 'gzip'));
  it('.tar.zst', { skip: zstdSupported ? false : 'this Node.js has no zlib zstd' }, () => {
    checkBundle((zlib as unknown as { zstdCompressSync(b: Buffer): Buffer }).zstdCompressSync(bundle()), 'zstd');
  });

  it('GNU tar output (pax format, a path longer than 100 bytes)', { skip: missingCommand('tar', 'tar') }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'granary-tar-'));
    try {
      const long = `${'deep/'.repeat(25)}probe.bpf.o`;
      execFileSync('mkdir', ['-p', join(dir, 'src', long, '..')]);
      writeFileSync(join(dir, 'src', long), probe());
      execFileSync('tar', ['--format=pax', '-cf', join(dir, 'b.tar'), '-C', join(dir, 'src'), 'deep']);
      const b = inspectEbpfBundle(readFileSync(join(dir, 'b.tar')));
      assert.deepEqual(b.entries.map((e) => e.path), [long]);
      assertProbe(b.entries[0].object!);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('GNU long names (typeflag L) and an entry whose name starts like a PE (MZ)', () => {
    const long = `${'x'.repeat(150)}/legacy.bpf.o`;
    const tar = writeTar([
      { path: 'MZ-looks-like-a-dll', data: Buffer.from('MZ') },
      { path: '././@LongLink', type: 'L', data: Buffer.from(`${long}\0`) },
      { path: long.slice(0, 99), data: legacy() },
    ]);
    const r = inspect(tar);
    assert.equal(r.format, 'tar');
    assert.deepEqual(r.bundle?.entries.map((e) => [e.path, e.object?.license ?? null]), [['MZ-looks-like-a-dll', null], [long, 'GPL']]);
  });

  it('a bundle without eBPF objects is described, but refused where eBPF is required', () => {
    const tar = writeTar([{ path: 'notes.txt', data: Buffer.from('hello') }]);
    assert.deepEqual(inspect(tar).bundle, { compression: 'none', entries: [{ path: 'notes.txt', size: 5 }] });
    assert.throws(() => inspectEbpfBundle(tar), NoEbpfObjectsError);
    assert.throws(() => inspect(tar, { require: 'ebpf' }), NoEbpfObjectsError);
  });

  it('gzip data that is not a tar is unsupported, not malformed', () => {
    assert.throws(() => inspect(gzipSync(Buffer.from('just text'))), UnsupportedFormatError);
  });
});

describe("libbpf section names", () => {
  const cases: [string, string | null, string | null, string, string | null, boolean][] = [
    ['kprobe/do_unlinkat', 'kprobe', null, 'kprobe', 'do_unlinkat', false],
    ['kretprobe/do_unlinkat', 'kprobe', null, 'kretprobe', 'do_unlinkat', false],
    ['kprobe', 'kprobe', null, 'kprobe', null, false],
    ['uprobe//bin/bash:readline', 'kprobe', null, 'uprobe', '/bin/bash:readline', false],
    ['uprobe.s/libc.so.6:malloc', 'kprobe', null, 'uprobe.s', 'libc.so.6:malloc', true],
    ['tp/sched/sched_switch', 'tracepoint', null, 'tp', 'sched/sched_switch', false],
    ['raw_tracepoint/sched_switch', 'raw_tracepoint', null, 'raw_tracepoint', 'sched_switch', false],
    ['raw_tp.w/bpf_test_finish', 'raw_tracepoint_writable', null, 'raw_tp.w', 'bpf_test_finish', false],
    ['tp_btf/sched_wakeup', 'tracing', 'trace_raw_tp', 'tp_btf', 'sched_wakeup', false],
    ['fexit/do_exit', 'tracing', 'trace_fexit', 'fexit', 'do_exit', false],
    ['fentry.s/do_exit', 'tracing', 'trace_fentry', 'fentry.s', 'do_exit', true],
    ['lsm/file_open', 'lsm', 'lsm_mac', 'lsm', 'file_open', false],
    ['lsm.s/bprm_committed_creds', 'lsm', 'lsm_mac', 'lsm.s', 'bprm_committed_creds', true],
    ['iter/task', 'tracing', 'trace_iter', 'iter', 'task', false],
    ['xdp', 'xdp', 'xdp', 'xdp', null, false],
    ['xdp.frags', 'xdp', 'xdp', 'xdp.frags', null, false],
    ['xdp/devmap', 'xdp', 'xdp_devmap', 'xdp/devmap', null, false],
    ['tc', 'sched_cls', null, 'tc', null, false],
    ['tc/ingress', 'sched_cls', 'tcx_ingress', 'tc/ingress', null, false],
    ['classifier', 'sched_cls', null, 'classifier', null, false],
    ['action', 'sched_act', null, 'action', null, false],
    ['cgroup/connect4', 'cgroup_sock_addr', 'cgroup_inet4_connect', 'cgroup/connect4', null, false],
    ['cgroup_skb/ingress', 'cgroup_skb', 'cgroup_inet_ingress', 'cgroup_skb/ingress', null, false],
    ['cgroup/sysctl', 'cgroup_sysctl', 'cgroup_sysctl', 'cgroup/sysctl', null, false],
    ['socket', 'socket_filter', null, 'socket', null, false],
    ['perf_event', 'perf_event', null, 'perf_event', null, false],
    ['sk_msg', 'sk_msg', 'sk_msg_verdict', 'sk_msg', null, false],
    ['struct_ops/dctcp_init', 'struct_ops', null, 'struct_ops', 'dctcp_init', false],
    ['usdt/./app:probe:start', 'kprobe', null, 'usdt', './app:probe:start', false],
    ['syscall', 'syscall', null, 'syscall', null, true],
  ];
  for (const [name, progType, attachType, kind, target, sleepable] of cases) {
    it(name, () => {
      const m = matchBpfSection(name);
      assert.ok(m, `${name} not recognised`);
      assert.deepEqual({ progType: m.progType, attachType: m.attachType, kind: m.kind, target: m.target, sleepable: m.sleepable }, { progType, attachType, kind, target, sleepable });
    });
  }
  it('names libbpf would not accept are unrecognised', () => {
    for (const name of ['kprobeX', 'xdp_prog', 'tracepointfoo', 'cgroup/unknown', 'my_section', '']) assert.equal(matchBpfSection(name), undefined, name);
  });
});
