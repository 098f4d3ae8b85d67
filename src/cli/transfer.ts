/**
 * The HTTP side of `granary push` / `granary pull`: which server (`--url`/`--token` or GRANARY_URL/GRANARY_TOKEN),
 * requests whose failures become exit codes (exit.ts), streamed uploads and downloads with an optional progress
 * bar, and a download that lands in its output file only whole and verified (temp file + rename).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import { EXIT, ExitError, failed, serverError, usage } from './exit.ts';

export interface RemoteFlags {
  url?: string;
  token?: string;
}

export interface Remote {
  base: string;
  token: string | undefined;
}

export function resolveRemote(f: RemoteFlags): Remote {
  const base = f.url ?? process.env.GRANARY_URL;
  if (!base) throw usage('no server: pass --url or set GRANARY_URL');
  try {
    new URL(base);
  } catch {
    throw usage(`--url ${JSON.stringify(base)} is not a URL`);
  }
  return { base, token: f.token ?? process.env.GRANARY_TOKEN };
}

/** Segments encoded one by one, so `/` stays a separator. */
export const encodePath = (p: string): string => p.split('/').map(encodeURIComponent).join('/');

/** fetch with network failures turned into exit 3 and the token attached. */
export async function request(remote: Remote, path: string, init: RequestInit & { duplex?: 'half' } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (remote.token) headers.set('authorization', `Bearer ${remote.token}`);
  try {
    return await fetch(new URL(path, remote.base), { ...init, headers });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw serverError(`cannot reach ${remote.base}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
  }
}

const SIGNATURE_REFUSALS = new Set(['unsigned', 'no-trusted-keys', 'malformed', 'untrusted', 'high-s']);

/** Turns a non-2xx answer into the matching exit: 404 or a refused signature → 1, 400/401/403 → 2, anything else → 3. */
export async function failFor(res: Response, what: string, remote: Remote): Promise<never> {
  const text = await res.text().catch(() => '');
  let message = text.slice(0, 300);
  let refusedSignature = false;
  try {
    const e = JSON.parse(text) as { error?: { message?: string; details?: { code?: string } } | string; message?: string };
    const err = typeof e.error === 'object' ? e.error : undefined;
    message = err?.message ?? e.message ?? message;
    // The server's signature policy refused the upload (generic PUT: details.code is the trust library's UploadCheckCode).
    refusedSignature = SIGNATURE_REFUSALS.has(err?.details?.code ?? '');
  } catch {
    /* not JSON: keep the text */
  }
  const detail = `${what}: HTTP ${res.status}${message ? `: ${message}` : ''}`;
  if (res.status === 404 || refusedSignature) throw failed(detail);
  if (res.status === 401 || res.status === 403) throw usage(`${detail}${remote.token ? '' : ' (pass --token or set GRANARY_TOKEN)'}`);
  if (res.status === 400 || res.status === 422) throw usage(detail);
  throw serverError(detail);
}

export async function getJson<T>(remote: Remote, path: string, what: string): Promise<T> {
  const res = await request(remote, path, { headers: { accept: 'application/json' } });
  if (!res.ok) return failFor(res, what, remote);
  try {
    return (await res.json()) as T;
  } catch {
    throw serverError(`${what}: the server's answer is not JSON`);
  }
}

/** A progress bar on stderr, or nothing: shown when forced (`--progress`), or stderr is a TTY and the file is large. */
export interface Progress {
  tick(bytes: number): void;
  stop(): void;
}

export const LARGE_FILE = 4 * 1024 * 1024;

export function progressBar(opts: { total: number | null; label: string; force?: boolean; json?: boolean }): Progress {
  const tty = process.stderr.isTTY === true;
  const show = !opts.json && (opts.force || (tty && (opts.total === null || opts.total >= LARGE_FILE)));
  if (!show) return { tick: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      noTTYOutput: !tty,
      notTTYSchedule: 500,
      hideCursor: tty,
      format: `${opts.label} [{bar}] {percentage}% | {done}/{size} | {speed}`,
      formatValue: (v, _o, type) => (type === 'percentage' ? String(v).padStart(3) : String(v)),
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  let done = 0;
  const payload = () => ({
    done: human(done),
    size: opts.total === null ? '?' : human(opts.total),
    speed: `${human(done / Math.max((Date.now() - started) / 1000, 0.001))}/s`,
  });
  bar.start(opts.total ?? 0, 0, payload());
  return {
    tick(bytes) {
      done += bytes;
      if (opts.total === null) bar.setTotal(done);
      bar.update(done, payload());
    },
    stop() {
      bar.update(done, payload());
      bar.stop();
    },
  };
}

export function human(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`;
}

/** A pass-through that counts bytes into a progress bar (and optionally hashes them). */
export function counter(p: Progress, hash?: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash?.update(chunk);
      p.tick(chunk.length);
      cb(null, chunk);
    },
  });
}

/** SHA-256 (lowercase hex) of a file, read as a stream; each chunk is also handed to `also` (e.g. a signer). */
export async function hashFile(file: string, also?: (chunk: Buffer) => void): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) {
    h.update(chunk as Buffer);
    also?.(chunk as Buffer);
  }
  return h.digest('hex');
}

/** The body of a streamed upload of `file`, counted into `p`. */
export function uploadBody(file: string, p: Progress): ReadableStream<Uint8Array> {
  const counted = createReadStream(file).pipe(counter(p));
  return Readable.toWeb(counted) as ReadableStream<Uint8Array>;
}

export interface Downloaded {
  /** Lowercase hex SHA-256 of what was written. */
  sha256: string;
  size: number;
  /** The temp file holding the bytes; `commit` renames it to the output, `discard` deletes it. */
  temp: string;
  commit(): Promise<void>;
  discard(): Promise<void>;
}

/**
 * Streams a response body to a temp file beside `out` (same directory, so the final rename is atomic), hashing as
 * it goes. The caller checks the digest / signature and then commits or discards; on a stream error the temp file
 * is removed before the error is rethrown.
 */
export async function downloadToTemp(res: Response, out: string, p: Progress): Promise<Downloaded> {
  if (!res.body) throw serverError('the server sent no body');
  const temp = join(dirname(out), `.${basename(out)}.${randomBytes(6).toString('hex')}.part`);
  const h = createHash('sha256');
  let size = 0;
  const discard = () => unlink(temp).catch(() => {});
  try {
    const source = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    await pipeline(
      source,
      new Transform({
        transform(chunk: Buffer, _enc, cb) {
          size += chunk.length;
          cb(null, chunk);
        },
      }),
      counter(p, h),
      createWriteStream(temp, { flags: 'wx', mode: 0o644 }),
    );
  } catch (e) {
    await discard();
    const errno = (e as NodeJS.ErrnoException).code;
    if (errno === 'ENOENT' || errno === 'EACCES' || errno === 'EEXIST') throw usage(`cannot write ${out}: ${(e as Error).message}`);
    throw new ExitError(EXIT.SERVER, `download interrupted: ${(e as Error).message}`);
  }
  return { sha256: h.digest('hex'), size, temp, commit: () => rename(temp, out), discard };
}

/** Size of a local file, with a usage error naming it when it cannot be read. */
export async function fileSize(file: string): Promise<number> {
  try {
    const s = await stat(file);
    if (!s.isFile()) throw usage(`${file} is not a regular file`);
    return s.size;
  } catch (e) {
    if (e instanceof ExitError) throw e;
    throw usage(`cannot read ${file}: ${(e as Error).message}`);
  }
}
