/**
 * Test helper: real memflow plug-ins for the registry tests, compiled with the introspection fixtures' build helper
 * (gcc for ELF, mingw-w64 for PE). `ELF_MISSING` / `PE_MISSING` are skip reasons naming the apt package.
 */
import { readFileSync } from 'node:fs';
import { SHARED, TOOLCHAINS, build, missing } from '../../introspect/fixtures/build.ts';

export const ELF_MISSING = missing(TOOLCHAINS.gcc) ?? false;
export const PE_MISSING = missing(TOOLCHAINS.mingw64) ?? false;

export interface Variant {
  name: string;
  version: string;
  abi: number;
  description?: string;
}

/** An x86_64 ELF (`pe: false`) or x86_64 DLL exporting one connector `MEMFLOW_CONNECTOR_<NAME>`. */
export function plugin(v: Variant, target: 'elf' | 'pe' = 'elf'): Buffer {
  const tc = target === 'elf' ? TOOLCHAINS.gcc : TOOLCHAINS.mingw64;
  const flags = [
    ...(target === 'elf' ? SHARED : ['-shared', '-O2']),
    `-DSYM=${v.name.toUpperCase()}`,
    `-DNAME="${v.name}"`,
    `-DVERSION="${v.version}"`,
    `-DABI=${v.abi}`,
    ...(v.description === undefined ? [] : [`-DDESC="${v.description}"`]),
  ];
  return readFileSync(build(tc, { sources: ['versioned.c'], deps: ['plugin.h'], flags, out: `versioned.${target === 'elf' ? 'so' : 'dll'}` }));
}

/** A valid shared library that exports no plug-in (fixtures/none.c). */
export function noPlugin(): Buffer {
  return readFileSync(build(TOOLCHAINS.gcc, { sources: ['none.c'], deps: ['plugin.h'], flags: SHARED, out: 'none.gcc.so' }));
}
