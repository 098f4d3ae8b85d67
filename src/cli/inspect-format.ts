/** Human-readable text for `granary inspect`: what `inspect()` found, one fact per line, nested by indentation. */
import type { InspectResult } from '../introspect/index.ts';
import type { Arch, EbpfObjectInfo } from '../introspect/index.ts';

const arch = (a: Arch | null): string => (a === null ? '-' : typeof a === 'string' ? a : `unknown(${a.unknown})`);

function ebpfLines(o: EbpfObjectInfo, pad: string): string[] {
  const out = [
    `${pad}eBPF object (${o.endianness}-endian)`,
    `${pad}  license:  ${o.license ?? '(none)'}`,
    `${pad}  kernel:   ${o.kernelVersionString ?? '(no version section)'}`,
    `${pad}  BTF:      ${o.btf ? 'yes' : 'no'}${o.btfExt ? `, .BTF.ext with ${o.coreRelocations} CO-RE relocation(s)` : ''}`,
    `${pad}  programs: ${o.programs.length}`,
  ];
  for (const p of o.programs) {
    const type = p.progType ?? 'unknown';
    out.push(`${pad}    ${p.name}  section=${p.section}  type=${type}${p.attachType ? `  attach=${p.attachType}` : ''}${p.target ? `  target=${p.target}` : ''}  insns=${p.instructions}${p.sleepable ? '  sleepable' : ''}`);
  }
  out.push(`${pad}  maps:     ${o.maps.length}`);
  for (const m of o.maps) {
    const dims = [m.keySize === null ? null : `key=${m.keySize}`, m.valueSize === null ? null : `value=${m.valueSize}`, m.maxEntries === null ? null : `max_entries=${m.maxEntries}`];
    out.push(`${pad}    ${m.name}  type=${m.type ?? '?'}  ${dims.filter(Boolean).join('  ')}  (${m.source})`.trimEnd());
  }
  if (o.dataSections.length) out.push(`${pad}  data sections: ${o.dataSections.join(', ')}`);
  return out;
}

export function formatInspect(file: string, r: InspectResult): string {
  const lines = [`${file}:`, `  format:     ${r.format}${r.fileKind ? ` (${r.fileKind})` : ''}`];
  if (r.format !== 'tar' && r.format !== 'macho-fat') {
    lines.push(`  arch:       ${arch(r.arch)}${r.machine === null ? '' : ` (machine 0x${r.machine.toString(16)})`}`);
    lines.push(`  bits:       ${r.bits ?? '-'}`);
    lines.push(`  endianness: ${r.endianness ?? '-'}`);
  }
  for (const s of r.slices ?? []) {
    lines.push(`  slice @${s.offset} (${s.size} bytes): ${arch(s.arch)} ${s.format}${s.bits ? ` ${s.bits}-bit` : ''}${s.fileKind ? ` ${s.fileKind}` : ''}`);
  }
  if (r.memflow) {
    lines.push(`  memflow plug-ins: ${r.memflow.length}`);
    for (const p of r.memflow) {
      lines.push(`    ${p.name} ${p.version}  kind=${p.pluginKind}  abi=${p.pluginVersion}  arch=${arch(p.architecture)}  file=${p.fileType}  export=${p.exportName}`);
      if (p.description) lines.push(`      ${p.description}`);
    }
  } else if (r.format !== 'tar' && !r.ebpf) {
    lines.push('  memflow plug-ins: none');
  }
  if (r.ebpf) lines.push(...ebpfLines(r.ebpf, '  '));
  if (r.bundle) {
    lines.push(`  bundle: ${r.bundle.compression}, ${r.bundle.entries.length} file(s)`);
    for (const e of r.bundle.entries) {
      lines.push(`    ${e.path} (${e.size} bytes)${e.object ? '' : ' — not an eBPF object'}`);
      if (e.object) lines.push(...ebpfLines(e.object, '      '));
    }
  }
  return lines.join('\n') + '\n';
}
