/**
 * A bounded tar reader over a Buffer (ustar, GNU and pax headers), and decompression of `.tar.gz` / `.tar.zst`
 * bundles with a hard cap on the expanded size. Entries are views into the buffer: reading a tar allocates nothing
 * proportional to its contents. Every header is checksummed; counts and sizes are limited (bomb protection).
 */
import * as zlib from 'node:zlib';
import { LimitExceededError, MalformedBinaryError, UnsupportedFormatError } from './errors.ts';
import { BinaryReader, capCount } from './reader.ts';
import type { IntrospectLimits } from './types.ts';

export type Compression = 'none' | 'gzip' | 'zstd';

export interface TarEntry {
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';
  size: number;
  /** File contents (a view); empty for non-files. */
  data: Buffer;
  /** Offset of the header in the tar stream. */
  offset: number;
}

const BLOCK = 512;
const MAX_PATH = 4096;

export function isGzip(buf: Buffer): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

export function isZstd(buf: Buffer): boolean {
  return buf.length >= 4 && buf.readUInt32LE(0) === 0xfd2fb528;
}

/** A first block whose checksum is right (ustar, GNU and v7 headers all carry one). */
export function isTar(buf: Buffer): boolean {
  if (buf.length < BLOCK) return false;
  try {
    return headerChecksumOk(new BinaryReader(buf), 0);
  } catch {
    return false;
  }
}

/** "ustar" at offset 257: a POSIX/GNU tar header (checked before weaker magics such as PE's two-byte `MZ`). */
export function hasUstarMagic(buf: Buffer): boolean {
  return buf.length >= BLOCK && buf.toString('latin1', 257, 262) === 'ustar' && isTar(buf);
}

/** zstd in Node's zlib (Node ≥ 23.8 / 22.15). */
export const zstdSupported = typeof (zlib as { zstdDecompressSync?: unknown }).zstdDecompressSync === 'function';

/**
 * The tar stream of a bundle: the buffer itself, or its gzip/zstd expansion capped at `maxBundleBytes`. The zstd
 * window is capped too (2^23..2^27 bytes, ≈ maxBundleBytes), so a hostile frame header cannot make the decoder
 * allocate more; a frame needing a larger window is a `LimitExceededError`.
 */
export function decompressBundle(buf: Buffer, limits: IntrospectLimits): { compression: Compression; tar: Buffer } {
  const max = limits.maxBundleBytes;
  const run = (compression: Compression, f: () => Buffer): { compression: Compression; tar: Buffer } => {
    try {
      return { compression, tar: f() };
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) {
        throw new LimitExceededError('maxBundleBytes', max, `${compression} bundle expansion`);
      }
      if (code === 'ZSTD_error_frameParameter_windowTooLarge') {
        throw new LimitExceededError('maxBundleBytes', max, 'the zstd window the frame asks for');
      }
      throw new MalformedBinaryError(`${compression} data is corrupt: ${(e as Error).message}`, undefined, { cause: e });
    }
  };
  if (isGzip(buf)) return run('gzip', () => zlib.gunzipSync(buf, { maxOutputLength: max }));
  if (isZstd(buf)) {
    if (!zstdSupported) throw new UnsupportedFormatError('.tar.zst bundles need a Node.js with zstd support');
    // At least 8 MiB (what `zstd -19` streams with), at most 128 MiB (zstd's own default cap), else ~maxBundleBytes.
    const windowLogMax = Math.min(27, Math.max(23, Math.ceil(Math.log2(max))));
    return run('zstd', () =>
      zlib.zstdDecompressSync(buf, { maxOutputLength: max, params: { [zlib.constants.ZSTD_d_windowLogMax]: windowLogMax } }),
    );
  }
  return { compression: 'none', tar: buf };
}

function headerChecksumOk(r: BinaryReader, off: number): boolean {
  const stored = octal(r, off + 148, 8, 'checksum');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : r.buf[off + i];
  return sum === stored;
}

/** A numeric field: octal digits (space/NUL padded), or GNU base-256 when the high bit of the first byte is set. */
function octal(r: BinaryReader, off: number, len: number, what: string): number {
  const b = r.bytes(off, len, what);
  if (b[0] & 0x80) {
    let v = 0n;
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(b[i]);
    if ((b[0] & 0x7f) !== 0 || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new MalformedBinaryError(`tar ${what} is impossibly large`, r.base + off);
    return Number(v);
  }
  let i = 0;
  while (i < len && b[i] === 0x20) i++;
  let v = 0;
  for (; i < len && b[i] !== 0 && b[i] !== 0x20; i++) {
    const d = b[i] - 0x30;
    if (d < 0 || d > 7) throw new MalformedBinaryError(`tar ${what} is not octal`, r.base + off);
    v = v * 8 + d;
  }
  return v;
}

/** `path` (and `size`) from pax extended header records `"<len> <key>=<value>\n"`. */
function paxRecords(data: Buffer): { path?: string; size?: number } {
  const out: { path?: string; size?: number } = {};
  let o = 0;
  while (o < data.length) {
    const sp = data.indexOf(0x20, o);
    if (sp < 0 || sp - o > 20) throw new MalformedBinaryError('malformed pax record length');
    const len = Number(data.toString('latin1', o, sp));
    if (!Number.isSafeInteger(len) || len <= sp - o || o + len > data.length) throw new MalformedBinaryError('malformed pax record');
    const rec = data.toString('utf8', sp + 1, o + len - 1);
    const eq = rec.indexOf('=');
    const key = rec.slice(0, eq);
    const value = rec.slice(eq + 1);
    if (key === 'path') out.path = value.slice(0, MAX_PATH);
    else if (key === 'size') {
      const n = Number(value);
      if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new MalformedBinaryError('malformed pax size');
      out.size = n;
    }
    o += len;
  }
  return out;
}

/**
 * Entries of a tar stream, in order. At most `maxTarEntries` headers (of any kind) are read and the regular
 * files may total at most `maxBundleContentBytes`; a header with a bad checksum or data running past the end is
 * malformed. Ends at the first all-zero block (or the end of the buffer).
 */
export function* readTar(buf: Buffer, limits: IntrospectLimits): Generator<TarEntry> {
  const r = new BinaryReader(buf);
  let off = 0;
  let headers = 0;
  let total = 0;
  let longName: string | undefined;
  let pax: { path?: string; size?: number } = {};
  while (off + BLOCK <= buf.length) {
    const hdr = buf.subarray(off, off + BLOCK);
    if (hdr.every((b) => b === 0)) return;
    capCount(++headers, limits.maxTarEntries, 'maxTarEntries', 'tar entries');
    if (!headerChecksumOk(r, off)) throw new MalformedBinaryError('tar header checksum mismatch', off);
    const typeflag = String.fromCharCode(hdr[156]);
    const size = pax.size ?? octal(r, off + 124, 12, 'size');
    const dataOff = off + BLOCK;
    r.check(dataOff, size, 'tar entry data');
    const data = buf.subarray(dataOff, dataOff + size);
    const next = dataOff + Math.ceil(size / BLOCK) * BLOCK;

    if (typeflag === 'x') {
      if (size > limits.maxStringLength) throw new LimitExceededError('maxStringLength', limits.maxStringLength, 'pax header');
      pax = paxRecords(data);
    } else if (typeflag === 'L') {
      if (size > MAX_PATH) throw new MalformedBinaryError(`GNU long name of ${size} bytes`, off);
      const nul = data.indexOf(0);
      longName = data.toString('utf8', 0, nul < 0 ? size : nul);
    } else if (typeflag === 'g' || typeflag === 'K') {
      // global pax header / GNU long link name: nothing we report
    } else {
      const ustar = hdr.toString('latin1', 257, 262) === 'ustar';
      const name = r.fixedStr(off, 100);
      const prefix = ustar ? r.fixedStr(off + 345, 155) : '';
      const path = pax.path ?? longName ?? (prefix ? `${prefix}/${name}` : name);
      const type = typeflag === '0' || typeflag === '\0' || typeflag === '7' ? 'file'
        : typeflag === '5' ? 'directory' : typeflag === '2' ? 'symlink' : typeflag === '1' ? 'hardlink' : 'other';
      if (type === 'file') {
        total += size;
        if (total > limits.maxBundleContentBytes) throw new LimitExceededError('maxBundleContentBytes', limits.maxBundleContentBytes, 'bundle contents');
      }
      yield { path, type, size: type === 'file' ? size : 0, data: type === 'file' ? data : buf.subarray(0, 0), offset: off };
      longName = undefined;
      pax = {};
    }
    off = next;
  }
}
