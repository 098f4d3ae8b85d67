/**
 * Builds a module zip from a directory the way golang.org/x/mod/zip.CreateFromDir does, so what
 * `granary go publish` uploads hashes (h1:) the same as what `go` itself would make of that directory:
 * version-control directories, nested modules (subdirectories with their own go.mod), vendored packages and
 * irregular files (symlinks…) are omitted; invalid file names, case-fold collisions and the spec's size limits
 * make the build fail with every offending file listed. Files are streamed into the zip (yazl), never buffered.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import yazl from 'yazl';
import { checkFilePath } from '../formats/go/module.ts';
import { goAtLeast, parseModFile } from '../formats/go/modfile.ts';
import { CollisionChecker, MAX_ENTRIES, MAX_GO_MOD, MAX_LICENSE, MAX_ZIP_FILE, VCS_DIRS, isVendoredPackage } from '../formats/go/zip-rules.ts';

export interface ZipPlan {
  /** Module path from go.mod (null when the directory has none — only valid for +incompatible versions). */
  module: string | null;
  files: { name: string; abs: string; size: number }[];
  omitted: { name: string; why: string }[];
  invalid: { name: string; why: string }[];
}

async function isFile(p: string): Promise<boolean> {
  try {
    return !(await lstat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** Walks `dir` in lexical order and decides, for every file, whether it belongs in the module zip. */
export async function planModuleZip(dir: string): Promise<ZipPlan> {
  if (!(await stat(dir)).isDirectory()) throw new Error(`${dir} is not a directory`);
  let module: string | null = null;
  let go: string | null = null;
  const rootMod = join(dir, 'go.mod');
  if (await isFile(rootMod)) {
    const buf = await readFile(rootMod);
    if (buf.length > MAX_GO_MOD) throw new Error(`go.mod file too large (max size is ${MAX_GO_MOD} bytes)`);
    const mf = parseModFile(buf.toString('utf8'));
    module = mf.module;
    go = mf.go;
  }
  const go124 = goAtLeast(go, 1, 24);
  const plan: ZipPlan = { module, files: [], omitted: [], invalid: [] };
  const walk = async (abs: string, rel: string): Promise<void> => {
    const entries = (await readdir(abs, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const name = rel ? `${rel}/${e.name}` : e.name;
      const path = join(abs, e.name);
      if (e.isDirectory()) {
        if (VCS_DIRS.has(e.name)) {
          plan.omitted.push({ name: name + '/', why: 'directory is a version control repository' });
          continue;
        }
        if (await isFile(join(path, 'go.mod'))) {
          plan.omitted.push({ name: name + '/', why: 'file is in another module' });
          continue;
        }
        await walk(path, name);
      } else if (!e.isFile()) {
        plan.omitted.push({ name, why: 'not a regular file' });
      } else if (isVendoredPackage(name, go124)) {
        plan.omitted.push({ name, why: 'file is in vendor directory' });
      } else if (name === '.hg_archival.txt') {
        plan.omitted.push({ name, why: "file is inserted by 'hg archive' and is always omitted" });
      } else {
        plan.files.push({ name, abs: path, size: (await lstat(path)).size });
      }
    }
  };
  await walk(dir, '');
  checkPlan(plan);
  return plan;
}

/** zip.checkFiles: the rules every file of a module zip must meet; offenders move to `invalid`. */
function checkPlan(plan: ZipPlan): void {
  const collisions = new CollisionChecker();
  const valid: ZipPlan['files'] = [];
  let total = 0;
  for (const f of plan.files) {
    const bad = (why: string) => plan.invalid.push({ name: f.name, why });
    const pathErr = checkFilePath(f.name);
    if (pathErr) {
      bad(`malformed file path ${JSON.stringify(f.name)}: ${pathErr}`);
      continue;
    }
    const clash = collisions.check(f.name, false);
    if (clash) {
      bad(clash);
      continue;
    }
    const base = f.name.slice(f.name.lastIndexOf('/') + 1);
    if (base.toLowerCase() === 'go.mod' && f.name !== 'go.mod') {
      bad(base === f.name ? 'go.mod files must have lowercase names' : 'go.mod file not in module root directory');
      continue;
    }
    if (f.name === 'go.mod' && f.size > MAX_GO_MOD) {
      bad(`go.mod file too large (max size is ${MAX_GO_MOD} bytes)`);
      continue;
    }
    if (f.name === 'LICENSE' && f.size > MAX_LICENSE) {
      bad(`LICENSE file too large (max size is ${MAX_LICENSE} bytes)`);
      continue;
    }
    total += f.size;
    if (total > MAX_ZIP_FILE) {
      bad(`total size of module contents too large (max size is ${MAX_ZIP_FILE} bytes)`);
      continue;
    }
    valid.push(f);
  }
  if (valid.length > MAX_ENTRIES) plan.invalid.push({ name: '.', why: `${valid.length} files: Granary accepts at most ${MAX_ENTRIES} per module zip` });
  plan.files = valid;
}

/** Writes the planned files under `<module>@<version>/` into `out`; returns the zip's size. */
export async function writeModuleZip(plan: ZipPlan, module: string, version: string, out: string): Promise<number> {
  const zip = new yazl.ZipFile();
  const prefix = `${module}@${version}/`;
  // Fixed timestamps: the zip's bytes then depend only on the files (module hashes ignore metadata anyway).
  const mtime = new Date('2000-01-01T00:00:00Z');
  // Lazy: each file is opened only when the zip reaches it, so a large module does not hold thousands of fds.
  for (const f of plan.files) zip.addReadStreamLazy(prefix + f.name, { mtime, mode: 0o644, size: f.size }, (cb) => cb(null, createReadStream(f.abs)));
  zip.end();
  await pipeline(zip.outputStream, createWriteStream(out, { flags: 'wx', mode: 0o600 }));
  const size = (await stat(out)).size;
  if (size > MAX_ZIP_FILE) throw new Error(`module zip file is too large (${size} bytes; max size is ${MAX_ZIP_FILE} bytes)`);
  return size;
}
