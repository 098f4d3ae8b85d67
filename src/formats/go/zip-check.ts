/**
 * Checks an uploaded module zip the way golang.org/x/mod/zip's CheckZip and Unzip do, reading it from the blob
 * store through yauzl (random access by byte ranges, never the whole zip in memory): every name under
 * `module@version/`, clean and valid, no duplicates or case-fold collisions, go.mod only at the root, the spec's
 * size limits — first on the sizes the central directory declares, then on the bytes actually inflated, because
 * a declared size is only a claim (and each entry's CRC-32, which `go` checks too). Returns the root go.mod (at most 16 MiB) for `.mod` and `@latest`.
 */
import { PassThrough, type Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import yauzl from 'yauzl';
import { GranaryError } from '../../server/errors.ts';
import { checkFilePath } from './module.ts';
import { CollisionChecker, MAX_ENTRIES, MAX_GO_MOD, MAX_LICENSE, MAX_ZIP_FILE, isCleanPath } from './zip-rules.ts';

/** Opens `[start, end]` (inclusive) of the stored zip. */
export type RangeOpener = (start: number, end: number) => Promise<Readable>;

export interface ZipReport {
  /** Bytes of `<prefix>go.mod`, or null when the zip has none. */
  goMod: Buffer | null;
  files: number;
  uncompressed: number;
}

/** Reads up to this long are served from a buffered window (yauzl reads headers a few dozen bytes at a time). */
const SMALL_READ = 64 * 1024;
const WINDOW = 256 * 1024;

/**
 * yauzl's random-access interface over the blob store's ranged reads. yauzl asks for every central-directory
 * record, local header and name separately; one blob read per ask made a 2,000-file zip take seconds, so small reads
 * are served from two read-ahead windows (at most 2 × WINDOW bytes held) — one follows the central directory at the
 * end of the zip, the other the entries at the front, as the check walks both in step — and large entries stream
 * straight from the store.
 */
class RangeReader extends yauzl.RandomAccessReader {
  readonly #open: RangeOpener;
  readonly #size: number;
  /** Most recently used first. */
  #windows: { start: number; data: Promise<Buffer> }[] = [];
  constructor(open: RangeOpener, size: number) {
    super();
    this.#open = open;
    this.#size = size;
  }
  async #load(start: number, end: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of await this.#open(start, end - 1)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }
  #small(start: number, end: number): Promise<Buffer> {
    let w = this.#windows.find((x) => start >= x.start && end <= x.start + WINDOW);
    if (!w) w = { start, data: this.#load(start, Math.min(start + WINDOW, this.#size)) };
    this.#windows = [w, ...this.#windows.filter((x) => x !== w)].slice(0, 2);
    const cur = w;
    return cur.data.then((buf) => buf.subarray(start - cur.start, end - cur.start));
  }
  override _readStreamForRange(start: number, end: number): Readable {
    const out = new PassThrough();
    if (end <= start) {
      out.end();
      return out;
    }
    if (end - start <= SMALL_READ) {
      this.#small(start, end).then(
        (b) => out.end(b),
        (e: Error) => out.destroy(e),
      );
      return out;
    }
    this.#open(start, end - 1).then(
      (src) => {
        src.once('error', (e) => out.destroy(e));
        src.pipe(out);
      },
      (e: Error) => out.destroy(e),
    );
    return out;
  }
}

/** At most this many problems are listed in one refusal; the rest are counted. */
const MAX_LISTED = 10;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Inflates one entry to its end: yauzl fails a stream that yields more or fewer bytes than the entry declares, so
 * the size limits checked on declared sizes hold for the real content, and a corrupt entry is found now rather
 * than by every client. Returns the bytes only when `keep` (go.mod, at most 16 MiB).
 */
async function inflate(zip: yauzl.ZipFile, entry: yauzl.Entry, keep: boolean): Promise<Buffer | null> {
  const stream = await zip.openReadStreamPromise(entry);
  const chunks: Buffer[] = [];
  let crc = 0;
  for await (const chunk of stream) {
    crc = crc32(chunk as Buffer, crc);
    if (keep) chunks.push(chunk as Buffer);
  }
  // yauzl does not check CRC-32; Go's archive/zip does ("zip: checksum error"), so every client would fail on it.
  if (crc >>> 0 !== entry.crc32 >>> 0) throw new Error('checksum error: the content does not match its CRC-32');
  return keep ? Buffer.concat(chunks) : null;
}

export async function checkModuleZip(open: RangeOpener, size: number, module: string, version: string): Promise<ZipReport> {
  const where = `${module}@${version}`;
  const prefix = `${where}/`;
  if (size > MAX_ZIP_FILE) throw invalid(where, [`module zip file is too large (max size is ${MAX_ZIP_FILE} bytes)`]);
  let zip: yauzl.ZipFile;
  try {
    // decodeStrings: false so that names are judged by the module rules below, not refused by yauzl's own check.
    zip = await yauzl.fromRandomAccessReaderPromise(new RangeReader(open, size), size, { lazyEntries: true, decodeStrings: false, validateEntrySizes: true, autoClose: false });
  } catch (e) {
    throw invalid(where, [`not a valid zip file: ${(e as Error).message}`]);
  }
  try {
    if (zip.entryCount > MAX_ENTRIES) throw invalid(where, [`too many entries: ${zip.entryCount} (at most ${MAX_ENTRIES})`]);
    const problems: string[] = [];
    const collisions = new CollisionChecker();
    let files = 0;
    let declared = 0;
    let sizeError: string | null = null;
    let goMod: Buffer | null = null;
    // One pass: each entry is judged by the rules, then (while the zip is still acceptable) inflated.
    for await (const entry of zip.eachEntry()) {
      const rawName = entry.fileName as unknown as Buffer;
      let full: string;
      try {
        full = utf8.decode(rawName);
      } catch {
        problems.push(`${JSON.stringify(rawName.toString('latin1'))}: file name is not valid UTF-8`);
        continue;
      }
      const why = judge(full, prefix, entry, collisions);
      if (why === 'skip') continue;
      if (why) {
        problems.push(`${full}: ${why}`);
        continue;
      }
      const sz = entry.uncompressedSize;
      if (sz >= 0 && MAX_ZIP_FILE - declared >= sz) declared += sz;
      else sizeError ??= `total uncompressed size of module contents too large (max size is ${MAX_ZIP_FILE} bytes)`;
      files++;
      if (problems.length || sizeError) continue; // refused anyway: no need to read more bytes
      const name = full.slice(prefix.length);
      try {
        const bytes = await inflate(zip, entry, name === 'go.mod');
        if (bytes) goMod = bytes;
      } catch (e) {
        problems.push(`${full}: ${(e as Error).message}`);
      }
    }
    if (sizeError) problems.unshift(sizeError);
    if (problems.length) throw invalid(where, problems);
    return { goMod, files, uncompressed: declared };
  } finally {
    zip.close();
  }
}

/** The module-zip rules for one entry: null = a file to keep, 'skip' = a directory or the prefix itself, else why not. */
function judge(full: string, prefix: string, entry: yauzl.Entry, collisions: CollisionChecker): string | null {
  if (!full.startsWith(prefix)) return `path does not have prefix ${JSON.stringify(prefix)}`;
  let name = full.slice(prefix.length);
  if (name === '') return 'skip';
  const isDir = name.endsWith('/');
  if (isDir) name = name.slice(0, -1);
  if (!isCleanPath(name)) return 'file path is not clean (contains "..", "." or empty elements)';
  const pathErr = checkFilePath(name);
  if (pathErr) return `malformed file path ${JSON.stringify(name)}: ${pathErr}`;
  const clash = collisions.check(name, isDir);
  if (clash) return clash;
  if (isDir) return 'skip'; // empty directories are allowed and never extracted
  if (entry.isEncrypted()) return 'encrypted entries are not supported';
  const base = name.slice(name.lastIndexOf('/') + 1);
  if (base.toLowerCase() === 'go.mod') {
    if (base !== name) return 'go.mod file not in module root directory';
    if (name !== 'go.mod') return 'go.mod files must have lowercase names';
  }
  if (name === 'go.mod' && entry.uncompressedSize > MAX_GO_MOD) return `go.mod file too large (max size is ${MAX_GO_MOD} bytes)`;
  if (name === 'LICENSE' && entry.uncompressedSize > MAX_LICENSE) return `LICENSE file too large (max size is ${MAX_LICENSE} bytes)`;
  return null;
}

function invalid(where: string, problems: string[]): GranaryError {
  const listed = problems.slice(0, MAX_LISTED);
  const more = problems.length > MAX_LISTED ? `\n\t… and ${problems.length - MAX_LISTED} more` : '';
  return new GranaryError('UNPROCESSABLE', `invalid module zip for ${where}:\n\t${listed.join('\n\t')}${more}`, { details: { problems: listed } });
}
