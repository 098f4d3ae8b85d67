/**
 * Module zips for the Go tests, made with yazl exactly as written — including the bad ones a real tool would
 * never make (../ escapes, duplicate entries, wrong prefixes) — plus a helper that publishes one over HTTP.
 */
import yazl from 'yazl';
import type { TestServer } from '../../helpers/server.ts';
import { escapeCase } from '../../../src/formats/go/module.ts';

export type ZipFiles = [name: string, content: string | Buffer][];

/** A zip of the given entries, names taken verbatim (no prefix added). */
export async function rawZip(entries: ZipFiles): Promise<Buffer> {
  const z = new yazl.ZipFile();
  for (const [name, content] of entries) z.addBuffer(Buffer.isBuffer(content) ? content : Buffer.from(content), name, { mtime: new Date(0) });
  z.end();
  const chunks: Buffer[] = [];
  for await (const c of z.outputStream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Renames an entry in place — local header and central directory — to a name yazl would refuse to write
 * (`../x`, `/x`); both names must have the same length.
 */
export function renameEntry(zip: Buffer, from: string, to: string): Buffer {
  if (Buffer.byteLength(from) !== Buffer.byteLength(to)) throw new Error('renameEntry needs names of equal length');
  const out = Buffer.from(zip);
  const a = Buffer.from(from);
  let hits = 0;
  for (let i = out.indexOf(a); i >= 0; i = out.indexOf(a, i + 1)) {
    out.write(to, i);
    hits++;
  }
  if (hits !== 2) throw new Error(`expected ${from} twice (local header and central directory), found ${hits}`);
  return out;
}

/** A well-formed module zip: go.mod declaring `module`, one Go file, plus any `extra` files. */
export function moduleZip(module: string, version: string, o: { goMod?: string; extra?: ZipFiles } = {}): Promise<Buffer> {
  const prefix = `${module}@${version}/`;
  const pkg = module.split('/').filter((e) => !/^v[0-9]+$/.test(e)).pop()!.toLowerCase().replace(/[^a-z0-9]/g, '');
  const files: ZipFiles = [
    ['go.mod', o.goMod ?? `module ${module}\n\ngo 1.19\n`],
    [`${pkg}.go`, `package ${pkg}\n\n// Version is the version this module was published as.\nconst Version = "${version}"\n`],
    ...(o.extra ?? []),
  ];
  return rawZip(files.map(([n, c]) => [prefix + n, c]));
}

export const zipUrl = (repo: string, module: string, version: string) => `/go/${repo}/${escapeCase(module)}/@v/${escapeCase(version)}.zip`;

export async function publishZip(s: TestServer, repo: string, module: string, version: string, body: Buffer, auth?: string | null): Promise<{ status: number; text: string }> {
  const res = await s.fetch(zipUrl(repo, module, version), { method: 'PUT', body, headers: { 'content-type': 'application/zip' }, auth });
  return { status: res.status, text: await res.text() };
}
