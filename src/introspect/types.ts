/**
 * Shared vocabulary of the introspection library: architectures (memflow's enum), bitness, endianness and the
 * limits every parser honours. Imports no implementation.
 */

/** memflow's `ArchitectureIdent` as it appears in registry JSON: snake_case names, else `{ unknown: <machine> }`. */
export type Arch = 'x86' | 'x86_64' | 'arm' | 'arm64' | { unknown: number };

export type Bits = 32 | 64;
export type Endianness = 'little' | 'big';

/** memflow's `PluginFileType`. */
export type MemflowFileType = 'pe' | 'elf' | 'mach';

/**
 * Bounds on work and memory. Every table is also bounded by the size of the buffer (a count whose table would not
 * fit in the file is malformed before any loop runs); these limits bound what a *valid* but hostile file may cost.
 */
export interface IntrospectLimits {
  /** ELF section headers / Mach-O sections / PE sections per file. */
  maxSections: number;
  /** Symbols (ELF symtab entries, Mach-O nlist entries, PE export names) scanned per table. */
  maxSymbols: number;
  /** memflow descriptors per file (memflow plugins export one or two). */
  maxPlugins: number;
  /** Bytes of one string read from a descriptor, license section or tar header. */
  maxStringLength: number;
  /** Bytes of one symbol name (names are only read for symbols a caller asked about). */
  maxSymbolNameLength: number;
  /** Mach-O load commands per slice. */
  maxLoadCommands: number;
  /** Mach-O export trie nodes visited per slice. */
  maxTrieNodes: number;
  /** Slices of a fat/universal Mach-O. */
  maxFatArches: number;
  /** BTF type records parsed per object. */
  maxBtfTypes: number;
  /** eBPF programs and maps reported per object. */
  maxPrograms: number;
  /** Tar headers (of any type, including skipped ones) read per bundle. */
  maxTarEntries: number;
  /** Bytes a compressed bundle may expand to (also bounds the zstd window). */
  maxBundleBytes: number;
  /** Sum of the sizes of the regular files of a bundle. */
  maxBundleContentBytes: number;
}

export const DEFAULT_LIMITS: Readonly<IntrospectLimits> = Object.freeze({
  maxSections: 16_384,
  maxSymbols: 1_000_000,
  maxPlugins: 64,
  maxStringLength: 64 * 1024,
  maxSymbolNameLength: 4096,
  maxLoadCommands: 4096,
  maxTrieNodes: 100_000,
  maxFatArches: 16,
  maxBtfTypes: 500_000,
  maxPrograms: 4096,
  maxTarEntries: 1024,
  maxBundleBytes: 64 * 1024 * 1024,
  maxBundleContentBytes: 64 * 1024 * 1024,
});

export interface IntrospectOptions {
  /** Overrides of `DEFAULT_LIMITS`. */
  limits?: Partial<IntrospectLimits>;
}

export function resolveLimits(opts: IntrospectOptions | undefined): IntrospectLimits {
  return { ...DEFAULT_LIMITS, ...opts?.limits };
}

/** memflow's architecture mapping (plugin_analyzer.rs): ELF e_machine. */
export function archFromElfMachine(machine: number): Arch {
  switch (machine) {
    case 3:
      return 'x86';
    case 62:
      return 'x86_64';
    case 40:
      return 'arm';
    case 183:
      return 'arm64';
    default:
      return { unknown: machine };
  }
}

/** PE COFF `Machine`. */
export function archFromPeMachine(machine: number): Arch {
  switch (machine) {
    case 0x14c:
      return 'x86';
    case 0x8664:
      return 'x86_64';
    case 0x1c0:
    case 0x1c4:
      return 'arm';
    case 0xaa64:
      return 'arm64';
    default:
      return { unknown: machine };
  }
}

/** Mach-O `cputype` (signed in the header; reported unsigned in `unknown`). */
export function archFromMachoCpu(cputype: number): Arch {
  switch (cputype >>> 0) {
    case 7:
      return 'x86';
    case 0x01000007:
      return 'x86_64';
    case 12:
      return 'arm';
    case 0x0100000c:
      return 'arm64';
    default:
      return { unknown: cputype >>> 0 };
  }
}
