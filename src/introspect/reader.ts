/**
 * A bounds-checked reader over a Buffer: every read checks its range first and throws `MalformedBinaryError`
 * (with the absolute offset) instead of returning garbage or throwing a RangeError. Parsers read nothing else.
 * Also the helpers that keep loops bounded: a table's count is checked against the bytes that hold it before any
 * loop runs, and against a configured limit.
 */
import { LimitExceededError, MalformedBinaryError } from './errors.ts';
import type { Bits, Endianness } from './types.ts';

export { MalformedBinaryError } from './errors.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class BinaryReader {
  readonly buf: Buffer;
  readonly littleEndian: boolean;
  /** Absolute offset of `buf[0]` in the inspected input (for messages only). */
  readonly base: number;

  constructor(buf: Buffer, endianness: Endianness = 'little', base = 0) {
    this.buf = buf;
    this.littleEndian = endianness === 'little';
    this.base = base;
  }

  get length(): number {
    return this.buf.length;
  }

  get endianness(): Endianness {
    return this.littleEndian ? 'little' : 'big';
  }

  /** The same bytes read with another byte order. */
  as(endianness: Endianness): BinaryReader {
    return new BinaryReader(this.buf, endianness, this.base);
  }

  /** True when [off, off+len) lies inside the buffer (no throw). */
  has(off: number, len: number): boolean {
    return Number.isSafeInteger(off) && Number.isSafeInteger(len) && off >= 0 && len >= 0 && off + len <= this.buf.length;
  }

  /** Throws unless [off, off+len) lies inside the buffer. */
  check(off: number, len: number, what: string): void {
    if (!this.has(off, len)) {
      const where = Number.isSafeInteger(off) && off >= 0 ? this.base + off : undefined;
      throw new MalformedBinaryError(
        `${what} lies outside the data: ${fmt(len)} bytes at ${fmt(off)} of ${fmt(this.buf.length)}`,
        where,
      );
    }
  }

  u8(off: number, what = 'u8'): number {
    this.check(off, 1, what);
    return this.buf[off];
  }

  u16(off: number, what = 'u16'): number {
    this.check(off, 2, what);
    return this.littleEndian ? this.buf.readUInt16LE(off) : this.buf.readUInt16BE(off);
  }

  u32(off: number, what = 'u32'): number {
    this.check(off, 4, what);
    return this.littleEndian ? this.buf.readUInt32LE(off) : this.buf.readUInt32BE(off);
  }

  i32(off: number, what = 'i32'): number {
    this.check(off, 4, what);
    return this.littleEndian ? this.buf.readInt32LE(off) : this.buf.readInt32BE(off);
  }

  u64(off: number, what = 'u64'): bigint {
    this.check(off, 8, what);
    return this.littleEndian ? this.buf.readBigUInt64LE(off) : this.buf.readBigUInt64BE(off);
  }

  /** A u64 that must fit a JS safe integer (offsets, sizes, counts); larger values are malformed. */
  u64n(off: number, what = 'u64'): number {
    return toSafe(this.u64(off, what), what, this.base + off);
  }

  /** A pointer-sized unsigned value as a bigint (u32 or u64 by bitness). */
  ptr(off: number, bits: Bits, what = 'pointer'): bigint {
    return bits === 64 ? this.u64(off, what) : BigInt(this.u32(off, what));
  }

  /** A pointer-sized unsigned value as a safe number. */
  ptrn(off: number, bits: Bits, what = 'pointer'): number {
    return bits === 64 ? this.u64n(off, what) : this.u32(off, what);
  }

  /** A view (no copy) of [off, off+len). */
  bytes(off: number, len: number, what = 'bytes'): Buffer {
    this.check(off, len, what);
    return this.buf.subarray(off, off + len);
  }

  /** A reader over [off, off+len) with the same byte order; its offsets are relative to `off`. */
  sub(off: number, len: number, what = 'region'): BinaryReader {
    return new BinaryReader(this.bytes(off, len, what), this.endianness, this.base + off);
  }

  /**
   * A NUL-terminated string starting at `off`, searched within `maxLen` bytes (and the buffer). No terminator
   * there → malformed. Decoded as UTF-8 with replacement (names are reported, never interpreted).
   */
  cstr(off: number, maxLen: number, what = 'string'): string {
    this.check(off, 0, what);
    const end = Math.min(this.buf.length, off + maxLen);
    const rel = this.buf.subarray(off, end).indexOf(0);
    const nul = rel < 0 ? -1 : off + rel;
    if (nul < 0) {
      throw new MalformedBinaryError(`${what} has no NUL terminator within ${fmt(end - off)} bytes`, this.base + off);
    }
    return this.buf.toString('utf8', off, nul);
  }

  /** True when the bytes at `off` equal `prefix` (false when they lie outside the buffer). Costs O(prefix). */
  startsWith(off: number, prefix: Uint8Array): boolean {
    if (!this.has(off, prefix.length)) return false;
    for (let i = 0; i < prefix.length; i++) if (this.buf[off + i] !== prefix[i]) return false;
    return true;
  }

  /** A NUL-terminated string and the offset just past its terminator (see `cstr`). */
  cstrNext(off: number, maxLen: number, what = 'string'): { value: string; next: number } {
    const value = this.cstr(off, maxLen, what);
    return { value, next: off + this.buf.subarray(off).indexOf(0) + 1 };
  }

  /** A fixed-size, NUL-padded field (Mach-O segname, tar name); the terminator is optional. */
  fixedStr(off: number, len: number, what = 'string'): string {
    const b = this.bytes(off, len, what);
    const nul = b.indexOf(0);
    return b.toString('utf8', 0, nul < 0 ? len : nul);
  }

  /** `len` bytes at `off` that must be valid UTF-8. */
  utf8(off: number, len: number, what = 'string'): string {
    const b = this.bytes(off, len, what);
    try {
      return utf8.decode(b);
    } catch {
      throw new MalformedBinaryError(`${what} is not valid UTF-8`, this.base + off);
    }
  }

  /** Unsigned LEB128 (at most 10 bytes, value must be a safe integer). */
  uleb128(off: number, what = 'uleb128'): { value: number; next: number } {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      const byte = this.u8(off + i, what);
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return { value: toSafe(result, what, this.base + off), next: off + i + 1 };
      shift += 7n;
    }
    throw new MalformedBinaryError(`${what} is longer than 10 bytes`, this.base + off);
  }
}

/** A bigint that must be a safe integer. */
export function toSafe(v: bigint, what: string, offset?: number): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new MalformedBinaryError(`${what} is impossibly large (0x${v.toString(16)})`, offset);
  return Number(v);
}

/**
 * Checks a table before looping over it: `count` entries of `entSize` bytes at `off` must fit in the reader, and
 * `count` must not pass `max` (a configured limit, named `limit`). Returns `count` for chaining.
 */
export function checkTable(
  r: BinaryReader,
  off: number,
  count: number,
  entSize: number,
  what: string,
  max?: { limit: string; value: number },
): number {
  if (!Number.isSafeInteger(count) || count < 0) throw new MalformedBinaryError(`${what}: invalid count ${count}`);
  if (max !== undefined && count > max.value) throw new LimitExceededError(max.limit, max.value, `${what} count ${count}`);
  r.check(off, count * entSize, `${what} (${count} × ${entSize} bytes)`);
  return count;
}

/** Throws `LimitExceededError` when `n` passes `max`. */
export function capCount(n: number, max: number, limit: string, what: string): void {
  if (n > max) throw new LimitExceededError(limit, max, `${what} (${n})`);
}

function fmt(n: number): string {
  return Number.isFinite(n) ? `0x${n.toString(16)}` : String(n);
}
