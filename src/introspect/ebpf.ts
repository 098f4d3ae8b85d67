/**
 * eBPF objects (ELF, e_machine EM_BPF) as libbpf sees them: programs (functions in executable sections, typed by
 * libbpf's section-name conventions), maps (BTF-defined `.maps` and legacy `maps`), `license`, `version`, BTF and
 * CO-RE presence, global-data sections; and `.tar` / `.tar.gz` / `.tar.zst` bundles of such objects.
 */
import { matchBpfSection, bpfMapTypeName } from './bpf-sections.ts';
import { btfExtCoreRelocations, btfMapDefinitions, parseBtf } from './btf.ts';
import {
  EM_BPF, SHF_EXECINSTR, SHT_NOBITS, SHT_SYMTAB, STT_FUNC, STT_SECTION,
  elfSection, elfSectionData, elfSymbolName, elfSymbols, isElf, parseElf, type ElfFile, type ElfSection,
} from './elf.ts';
import { MalformedBinaryError, NoEbpfObjectsError, UnsupportedFormatError } from './errors.ts';
import { capCount } from './reader.ts';
import { decompressBundle, isTar, readTar, type Compression } from './tar.ts';
import { resolveLimits, type Endianness, type IntrospectLimits, type IntrospectOptions } from './types.ts';

export interface EbpfProgram {
  /** Function name (the section name when the object has no symbol for it). */
  name: string;
  section: string;
  /** libbpf program type ("kprobe", "tracepoint", "xdp", "sched_cls", "lsm", "tracing"…), null if unrecognised. */
  progType: string | null;
  /** libbpf expected attach type ("trace_fentry", "xdp", "cgroup_inet4_connect"…), null if none. */
  attachType: string | null;
  /** Section kind ("kprobe", "kretprobe", "tp", "fentry.s", "xdp"…). */
  kind: string;
  /** What the section names after `kind/` ("do_sys_openat2", "syscalls/sys_enter_openat"), or null. */
  target: string | null;
  sleepable: boolean;
  /** BPF instructions (8 bytes each). */
  instructions: number;
}

export interface EbpfMap {
  name: string;
  /** Map type name ("hash", "array", "ringbuf", "unknown:<n>"), null when the definition does not say. */
  type: string | null;
  typeId: number | null;
  keySize: number | null;
  valueSize: number | null;
  maxEntries: number | null;
  flags: number | null;
  /** LIBBPF_PIN_* (`__uint(pinning, …)`; 1 = by name), null when unset or legacy. */
  pinning: number | null;
  /** Where it was defined: BTF `.maps` or a legacy `struct bpf_map_def` in `maps`. */
  source: 'btf' | 'legacy';
}

export interface EbpfObjectInfo {
  endianness: Endianness;
  programs: EbpfProgram[];
  maps: EbpfMap[];
  /** Contents of the `license` section (the kernel checks it for GPL-only helpers), null when absent. */
  license: string | null;
  /** The `version` section (LINUX_VERSION_CODE), null when absent; `kernelVersionString` as "a.b.c". */
  kernelVersion: number | null;
  kernelVersionString: string | null;
  btf: boolean;
  btfExt: boolean;
  /** CO-RE relocation records in `.BTF.ext` (0 without). */
  coreRelocations: number;
  /** Global-data sections libbpf turns into internal maps (".rodata", ".bss", ".data.foo", ".kconfig"…). */
  dataSections: string[];
}

export interface EbpfBundleEntry {
  path: string;
  size: number;
  /** The object's description when the entry is an eBPF ELF; absent for other files. */
  object?: EbpfObjectInfo;
}

export interface EbpfBundleInfo {
  compression: Compression;
  /** Regular files of the bundle, in tar order. */
  entries: EbpfBundleEntry[];
}

export function isEbpfElf(buf: Buffer): boolean {
  return isElf(buf) && buf.length >= 20 && (buf[5] === 2 ? buf.readUInt16BE(18) : buf.readUInt16LE(18)) === EM_BPF;
}

const DATA_SECTION = /^(\.rodata|\.data|\.bss)(\..*)?$|^\.kconfig$|^\.ksyms$|^\.addr_space\.\d+$/;

/** Describes one eBPF object. Not EM_BPF → `UnsupportedFormatError`. */
export function inspectEbpfObject(buf: Buffer, opts?: IntrospectOptions): EbpfObjectInfo {
  return describeEbpf(parseElf(buf, resolveLimits(opts)), resolveLimits(opts));
}

export function describeEbpf(f: ElfFile, limits: IntrospectLimits): EbpfObjectInfo {
  if (f.machine !== EM_BPF) throw new UnsupportedFormatError(`ELF machine ${f.machine} is not EM_BPF (${EM_BPF})`);
  const progSections = new Map<number, ElfSection>();
  for (const s of f.sections) {
    if (s.type === SHT_NOBITS || s.size === 0 || (s.flags & BigInt(SHF_EXECINSTR)) === 0n || s.name === '.text') continue;
    progSections.set(s.index, s);
  }
  capCount(progSections.size, limits.maxPrograms, 'maxPrograms', 'program sections');
  const legacyMaps = elfSection(f, 'maps');
  const btfMapsSec = elfSection(f, '.maps');

  // One pass over .symtab: functions in program sections, objects in legacy `maps`.
  const funcs: { name: string; section: ElfSection; size: number }[] = [];
  const legacySyms: { name: string; value: number }[] = [];
  const symtab = f.sections.find((s) => s.type === SHT_SYMTAB);
  if (symtab !== undefined) {
    for (const sym of elfSymbols(f, symtab, limits)) {
      const sec = progSections.get(sym.shndx);
      if (sec !== undefined && sym.type === STT_FUNC) {
        capCount(funcs.length + 1, limits.maxPrograms, 'maxPrograms', 'programs');
        funcs.push({ name: elfSymbolName(f, sym, limits), section: sec, size: sym.size });
      } else if (legacyMaps !== undefined && sym.shndx === legacyMaps.index && sym.type !== STT_SECTION && sym.nameOffset >= 0) {
        capCount(legacySyms.length + 1, limits.maxPrograms, 'maxPrograms', 'maps');
        legacySyms.push({ name: elfSymbolName(f, sym, limits), value: Number(sym.value) });
      }
    }
  }
  const withFuncs = new Set(funcs.map((p) => p.section));
  for (const sec of progSections.values()) {
    if (!withFuncs.has(sec)) funcs.push({ name: sec.name, section: sec, size: sec.size });
  }
  const programs = funcs.map(({ name, section, size }): EbpfProgram => {
    const m = matchBpfSection(section.name);
    return {
      name,
      section: section.name,
      progType: m?.progType ?? null,
      attachType: m?.attachType ?? null,
      kind: m?.kind ?? section.name,
      target: m?.target ?? null,
      sleepable: m?.sleepable ?? false,
      instructions: Math.floor(size / 8),
    };
  });

  const btfSec = elfSection(f, '.BTF');
  const btfExtSec = elfSection(f, '.BTF.ext');
  const btf = btfSec !== undefined ? parseBtf(elfSectionData(f, btfSec), limits) : undefined;

  const maps: EbpfMap[] = [];
  if (btfMapsSec !== undefined) {
    if (btf === undefined) throw new MalformedBinaryError('object has a .maps section but no .BTF to define it');
    for (const d of btfMapDefinitions(btf, limits)) {
      maps.push({ name: d.name, type: d.type === null ? null : bpfMapTypeName(d.type), typeId: d.type, keySize: d.keySize, valueSize: d.valueSize, maxEntries: d.maxEntries, flags: d.flags, pinning: d.pinning, source: 'btf' });
    }
  }
  if (legacyMaps !== undefined && legacySyms.length > 0) {
    const data = elfSectionData(f, legacyMaps);
    // libbpf: each definition is section size / number of map symbols; the first five u32 are bpf_map_def.
    const defSize = Math.floor(data.length / legacySyms.length);
    if (defSize < 20) throw new MalformedBinaryError(`legacy map definitions of ${defSize} bytes are too small`);
    for (const s of legacySyms) {
      const typeId = data.u32(s.value, `map ${s.name} type`);
      maps.push({
        name: s.name,
        type: bpfMapTypeName(typeId),
        typeId,
        keySize: data.u32(s.value + 4),
        valueSize: data.u32(s.value + 8),
        maxEntries: data.u32(s.value + 12),
        flags: data.u32(s.value + 16),
        pinning: null,
        source: 'legacy',
      });
    }
  }

  let license: string | null = null;
  const lic = elfSection(f, 'license');
  if (lic !== undefined) {
    const d = elfSectionData(f, lic);
    license = d.cstr(0, Math.min(d.length, limits.maxStringLength), 'license section');
  }
  let kernelVersion: number | null = null;
  const ver = elfSection(f, 'version');
  if (ver !== undefined) kernelVersion = elfSectionData(f, ver).u32(0, 'version section');

  return {
    endianness: f.endianness,
    programs,
    maps,
    license,
    kernelVersion,
    kernelVersionString: kernelVersion === null ? null : `${kernelVersion >>> 16}.${(kernelVersion >>> 8) & 0xff}.${kernelVersion & 0xff}`,
    btf: btfSec !== undefined,
    btfExt: btfExtSec !== undefined,
    coreRelocations: btfExtSec !== undefined ? btfExtCoreRelocations(elfSectionData(f, btfExtSec)) : 0,
    dataSections: f.sections.filter((s) => DATA_SECTION.test(s.name)).map((s) => s.name),
  };
}

/**
 * Describes a `.tar`, `.tar.gz` or `.tar.zst` bundle: every regular file is listed, eBPF objects are inspected.
 * Compressed data that is not a tar → `UnsupportedFormatError`. A bundle without eBPF objects is described as such.
 */
export function describeEbpfBundle(buf: Buffer, limits: IntrospectLimits): EbpfBundleInfo {
  const { compression, tar } = decompressBundle(buf, limits);
  if (compression !== 'none' && !isTar(tar)) throw new UnsupportedFormatError(`the ${compression} data is not a tar archive`);
  const entries: EbpfBundleEntry[] = [];
  for (const e of readTar(tar, limits)) {
    if (e.type !== 'file') continue;
    if (!isEbpfElf(e.data)) {
      entries.push({ path: e.path, size: e.size });
      continue;
    }
    try {
      entries.push({ path: e.path, size: e.size, object: describeEbpf(parseElf(e.data, limits), limits) });
    } catch (err) {
      if (err instanceof Error) err.message = `${JSON.stringify(e.path.slice(0, 200))}: ${err.message}`;
      throw err;
    }
  }
  return { compression, entries };
}

/** Like `describeEbpfBundle`, but a bundle without any eBPF object → `NoEbpfObjectsError`. */
export function inspectEbpfBundle(buf: Buffer, opts?: IntrospectOptions): EbpfBundleInfo {
  const info = describeEbpfBundle(buf, resolveLimits(opts));
  if (!info.entries.some((e) => e.object !== undefined)) {
    throw new NoEbpfObjectsError(`the ${info.compression === 'none' ? '' : `${info.compression} `}tar bundle`);
  }
  return info;
}
