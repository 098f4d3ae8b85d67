/**
 * Just enough BTF (kernel Documentation/bpf/btf.rst) to read BTF-defined maps: the type records are indexed once
 * (offsets only), sizes are resolved with a bounded depth, and `.maps` variables are decoded the way libbpf does
 * (`__uint(x, n)` is `int (*x)[n]`, `__type(x, T)` is `T *x`). Also counts CO-RE relocations in `.BTF.ext`.
 */
import { MalformedBinaryError } from './errors.ts';
import { capCount, checkTable, type BinaryReader } from './reader.ts';
import type { IntrospectLimits } from './types.ts';

const BTF_MAGIC = 0xeb9f;
const KIND = { INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8, VOLATILE: 9, CONST: 10,
  RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15, FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19 } as const;
const MAX_DEPTH = 32;

export interface Btf {
  types: BinaryReader;
  strings: BinaryReader;
  /** Offset of each type record in `types`; index = type id (0 = void, no record). */
  offsets: number[];
}

/** A map declared in `.maps`; fields libbpf leaves unset are null. */
export interface BtfMapDef {
  name: string;
  type: number | null;
  keySize: number | null;
  valueSize: number | null;
  maxEntries: number | null;
  flags: number | null;
  pinning: number | null;
}

/** Bytes after the 12-byte common header of a record, by kind. */
function tail(kind: number, vlen: number): number | undefined {
  switch (kind) {
    case KIND.INT: case KIND.VAR: case KIND.DECL_TAG: return 4;
    case KIND.ARRAY: return 12;
    case KIND.STRUCT: case KIND.UNION: case KIND.DATASEC: case KIND.ENUM64: return 12 * vlen;
    case KIND.ENUM: case KIND.FUNC_PROTO: return 8 * vlen;
    case KIND.PTR: case KIND.FWD: case KIND.TYPEDEF: case KIND.VOLATILE: case KIND.CONST: case KIND.RESTRICT:
    case KIND.FUNC: case KIND.FLOAT: case KIND.TYPE_TAG: return 0;
    default: return undefined;
  }
}

export function parseBtf(sec: BinaryReader, limits: IntrospectLimits): Btf {
  let r = sec;
  if (r.u16(0, 'BTF magic') !== BTF_MAGIC) {
    r = r.as(r.littleEndian ? 'big' : 'little');
    if (r.u16(0, 'BTF magic') !== BTF_MAGIC) throw new MalformedBinaryError('bad BTF magic', sec.base);
  }
  const hdrLen = r.u32(4, 'BTF hdr_len');
  if (hdrLen < 24) throw new MalformedBinaryError(`BTF header length ${hdrLen} < 24`, r.base + 4);
  r.check(0, hdrLen, 'BTF header');
  const types = r.sub(hdrLen + r.u32(8), r.u32(12), 'BTF type section');
  const strings = r.sub(hdrLen + r.u32(16), r.u32(20), 'BTF string section');
  const offsets = [0];
  let o = 0;
  while (o < types.length) {
    capCount(offsets.length, limits.maxBtfTypes, 'maxBtfTypes', 'BTF types');
    const info = types.u32(o + 4, 'BTF type info');
    const kind = (info >>> 24) & 0x1f;
    const n = tail(kind, info & 0xffff);
    if (n === undefined) throw new MalformedBinaryError(`unknown BTF kind ${kind}`, types.base + o);
    types.check(o, 12 + n, 'BTF type record');
    offsets.push(o);
    o += 12 + n;
  }
  return { types, strings, offsets };
}

function rec(btf: Btf, id: number): { o: number; kind: number; vlen: number; sizeOrType: number; nameOff: number } {
  const o = btf.offsets[id];
  if (id <= 0 || o === undefined) throw new MalformedBinaryError(`BTF type id ${id} does not exist`);
  const info = btf.types.u32(o + 4);
  return { o, kind: (info >>> 24) & 0x1f, vlen: info & 0xffff, sizeOrType: btf.types.u32(o + 8), nameOff: btf.types.u32(o) };
}

export function btfName(btf: Btf, nameOff: number, limits: IntrospectLimits): string {
  if (nameOff === 0) return '';
  return btf.strings.cstr(nameOff, limits.maxSymbolNameLength, 'BTF name');
}

/** Follows typedef / const / volatile / restrict / type_tag to the underlying type id. */
function skipModifiers(btf: Btf, id: number): number {
  for (let d = 0; d < MAX_DEPTH; d++) {
    if (id === 0) return 0;
    const t = rec(btf, id);
    if (t.kind !== KIND.TYPEDEF && t.kind !== KIND.VOLATILE && t.kind !== KIND.CONST && t.kind !== KIND.RESTRICT && t.kind !== KIND.TYPE_TAG) return id;
    id = t.sizeOrType;
  }
  throw new MalformedBinaryError(`BTF type chain deeper than ${MAX_DEPTH} (a loop?)`);
}

/** Size in bytes of a type (BPF pointers are 8 bytes), or null when it has none (void, func, fwd). */
export function btfTypeSize(btf: Btf, id: number, depth = 0): number | null {
  if (depth > MAX_DEPTH) throw new MalformedBinaryError(`BTF type nesting deeper than ${MAX_DEPTH} (a loop?)`);
  id = skipModifiers(btf, id);
  if (id === 0) return null;
  const t = rec(btf, id);
  switch (t.kind) {
    case KIND.INT: case KIND.STRUCT: case KIND.UNION: case KIND.ENUM: case KIND.ENUM64: case KIND.FLOAT: case KIND.DATASEC:
      return t.sizeOrType;
    case KIND.PTR:
      return 8;
    case KIND.VAR:
      return btfTypeSize(btf, t.sizeOrType, depth + 1);
    case KIND.ARRAY: {
      const elem = btfTypeSize(btf, btf.types.u32(t.o + 12), depth + 1);
      const n = btf.types.u32(t.o + 20);
      return elem === null ? null : elem * n;
    }
    default:
      return null;
  }
}

/** `__uint(name, n)` → n: a pointer to an array of n ints. */
function uintValue(btf: Btf, id: number): number | null {
  const p = rec(btf, skipModifiers(btf, id));
  if (p.kind !== KIND.PTR) return null;
  const a = rec(btf, skipModifiers(btf, p.sizeOrType));
  return a.kind === KIND.ARRAY ? btf.types.u32(a.o + 20) : null;
}

/** `__type(name, T)` → sizeof(T): a pointer to T. */
function pointeeSize(btf: Btf, id: number): number | null {
  const p = rec(btf, skipModifiers(btf, id));
  return p.kind === KIND.PTR ? btfTypeSize(btf, p.sizeOrType) : null;
}

/** The maps of the `.maps` DATASEC, decoded from their BTF struct definitions. */
export function btfMapDefinitions(btf: Btf, limits: IntrospectLimits): BtfMapDef[] {
  const out: BtfMapDef[] = [];
  let members = 0;
  for (let id = 1; id < btf.offsets.length; id++) {
    const ds = rec(btf, id);
    if (ds.kind !== KIND.DATASEC || btfName(btf, ds.nameOff, limits) !== '.maps') continue;
    for (let v = 0; v < ds.vlen; v++) {
      capCount(out.length + 1, limits.maxPrograms, 'maxPrograms', 'maps');
      const varId = btf.types.u32(ds.o + 12 + v * 12);
      const vr = rec(btf, varId);
      if (vr.kind !== KIND.VAR) throw new MalformedBinaryError(`.maps entry ${v} is not a BTF variable`);
      const def: BtfMapDef = { name: btfName(btf, vr.nameOff, limits), type: null, keySize: null, valueSize: null, maxEntries: null, flags: null, pinning: null };
      const st = rec(btf, skipModifiers(btf, vr.sizeOrType));
      if (st.kind !== KIND.STRUCT) throw new MalformedBinaryError(`map ${def.name} is not defined by a struct`);
      checkTable(btf.types, st.o + 12, st.vlen, 12, `members of map ${def.name}`);
      // Many maps may share one huge struct: bound the members visited overall.
      members += st.vlen;
      capCount(members, limits.maxBtfTypes, 'maxBtfTypes', 'map definition members');
      for (let m = 0; m < st.vlen; m++) {
        const mo = st.o + 12 + m * 12;
        const member = btfName(btf, btf.types.u32(mo), limits);
        const mt = btf.types.u32(mo + 4);
        if (member === 'type') def.type = uintValue(btf, mt);
        else if (member === 'max_entries') def.maxEntries = uintValue(btf, mt);
        else if (member === 'map_flags') def.flags = uintValue(btf, mt);
        else if (member === 'pinning') def.pinning = uintValue(btf, mt);
        else if (member === 'key_size') def.keySize = uintValue(btf, mt);
        else if (member === 'value_size') def.valueSize = uintValue(btf, mt);
        else if (member === 'key') def.keySize = pointeeSize(btf, mt);
        else if (member === 'value') def.valueSize = pointeeSize(btf, mt);
      }
      out.push(def);
    }
  }
  return out;
}

/** Number of CO-RE relocation records in a `.BTF.ext` section (0 when it has no CO-RE part). */
export function btfExtCoreRelocations(sec: BinaryReader): number {
  let r = sec;
  if (r.u16(0, 'BTF.ext magic') !== BTF_MAGIC) {
    r = r.as(r.littleEndian ? 'big' : 'little');
    if (r.u16(0, 'BTF.ext magic') !== BTF_MAGIC) throw new MalformedBinaryError('bad .BTF.ext magic', sec.base);
  }
  const hdrLen = r.u32(4, '.BTF.ext hdr_len');
  if (hdrLen < 32) return 0; // no core_relo_off/len fields
  const core = r.sub(hdrLen + r.u32(24), r.u32(28), 'CO-RE relocation section');
  if (core.length === 0) return 0;
  const recSize = core.u32(0, 'CO-RE record size');
  if (recSize < 16) throw new MalformedBinaryError(`CO-RE record size ${recSize} < 16`, core.base);
  let total = 0;
  let o = 4;
  while (o < core.length) {
    const n = core.u32(o + 4, 'CO-RE num_info');
    checkTable(core, o + 8, n, recSize, 'CO-RE relocation records');
    total += n;
    o += 8 + n * recSize;
  }
  return total;
}
