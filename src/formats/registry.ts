/**
 * The list of formats this build knows. Adding a format = one import and one line here; nothing else in
 * the core names a format.
 */
import type { FormatPlugin } from './types.ts';
import { FORMAT_CONTRACT_VERSION } from './types.ts';
import { genericFormat } from './generic/plugin.ts';
import { ociFormat } from './oci/plugin.ts';
import { memflowFormat, memflowRootFormat } from './memflow/plugin.ts';
import { bpfFormat } from './bpf/plugin.ts';
import { goFormat } from './go/plugin.ts';
import { mavenFormat } from './maven/plugin.ts';

const FORMATS: FormatPlugin[] = [genericFormat, ociFormat, memflowFormat, memflowRootFormat, bpfFormat, goFormat, mavenFormat];

export function allFormats(): readonly FormatPlugin[] {
  return FORMATS;
}

/** The plug-in that defines repositories of this format (protocol-only plug-ins are not formats). */
export function findFormat(name: string): FormatPlugin | undefined {
  return FORMATS.find((f) => f.name === name && f.repositoryFormat === undefined);
}

/** Shape-checks every plug-in at start: a broken one stops the server with a named error. */
export function checkFormats(formats: readonly FormatPlugin[] = FORMATS): void {
  const seen = new Set<string>();
  for (const f of formats) {
    if (!/^[a-z][a-z0-9]*$/.test(f.name)) throw new Error(`format plug-in has an invalid name ${JSON.stringify(f.name)}`);
    if (seen.has(f.name)) throw new Error(`format ${f.name} is registered twice`);
    seen.add(f.name);
    if (f.contract !== FORMAT_CONTRACT_VERSION) {
      throw new Error(`format ${f.name} implements contract ${f.contract}, this core speaks ${FORMAT_CONTRACT_VERSION}`);
    }
    if (f.repositoryFormat === undefined && !f.kinds.length) throw new Error(`format ${f.name} supports no repository kind`);
    if (f.repositoryFormat !== undefined && !formats.some((o) => o.name === f.repositoryFormat && o.repositoryFormat === undefined)) {
      throw new Error(`plug-in ${f.name} serves ${f.repositoryFormat} repositories, but no such format is registered`);
    }
    if (typeof f.register !== 'function') throw new Error(`format ${f.name} has no register()`);
  }
}
