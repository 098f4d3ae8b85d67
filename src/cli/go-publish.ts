/**
 * The work of `granary go publish` (registered in go.ts): plan the zip, check module path and version, write
 * the zip to a temp file (or `--output`), stream it to the server, report.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { failed, usage } from './exit.ts';
import { failFor, progressBar, request, resolveRemote, uploadBody } from './transfer.ts';
import { checkModuleVersion, escapeCase } from '../formats/go/module.ts';
import { build } from '../formats/go/semver.ts';
import { isGranaryError } from '../server/errors.ts';
import { planModuleZip, writeModuleZip } from './go-zip.ts';

export interface PublishFlags {
  version: string;
  module?: string;
  repo?: string;
  server?: string;
  url?: string;
  token?: string;
  output?: string;
  json?: boolean;
  progress?: boolean;
}

export async function publish(dir: string, f: PublishFlags): Promise<void> {
  if (!f.output && !f.repo) throw usage('--repo is required (or --output to only write the zip)');
  const plan = await planModuleZip(dir).catch((e: Error) => {
    throw usage(`${dir}: ${e.message}`);
  });
  const incompatible = build(f.version) === '+incompatible';
  if (!plan.module && !incompatible) throw usage(`${dir}/go.mod is missing or has no module statement`);
  if (plan.module && incompatible) throw usage(`${f.version}: +incompatible versions are for modules without go.mod; use the /vN path suffix instead`);
  if (plan.module && f.module && f.module !== plan.module) throw usage(`--module ${f.module} does not match ${dir}/go.mod, which declares ${plan.module}`);
  const module = plan.module ?? f.module;
  if (!module) throw usage(`${dir} has no go.mod: pass --module <path> for a +incompatible version`);
  try {
    checkModuleVersion(module, f.version);
  } catch (e) {
    if (isGranaryError(e)) throw usage(e.message);
    throw e;
  }
  if (plan.invalid.length) {
    throw usage(`cannot build the module zip of ${dir}:\n${plan.invalid.map((i) => `  ${i.name}: ${i.why}`).join('\n')}`);
  }
  if (f.output) {
    const size = await writeModuleZip(plan, module, f.version, f.output);
    report(f, { module, version: f.version, file: f.output, size, files: plan.files.length, omitted: plan.omitted });
    return;
  }
  const remote = resolveRemote({ url: f.server ?? f.url, token: f.token });
  const tmp = await mkdtemp(join(tmpdir(), 'granary-go-'));
  try {
    const zipFile = join(tmp, 'module.zip');
    const size = await writeModuleZip(plan, module, f.version, zipFile);
    const p = progressBar({ total: size, label: `${module}@${f.version}`, force: f.progress, json: f.json });
    const path = `/go/${encodeURIComponent(f.repo!)}/${escapeCase(module)}/@v/${escapeCase(f.version)}.zip`;
    const res = await request(remote, path, {
      method: 'PUT',
      headers: { 'content-type': 'application/zip', 'content-length': String(size) },
      body: uploadBody(zipFile, p),
      duplex: 'half',
    });
    p.stop();
    if (res.status === 409) throw failed(`publish ${module}@${f.version}: ${(await res.text()).trim()}`);
    if (!res.ok) await failFor(res, `publish ${module}@${f.version}`, remote);
    const out = (await res.json()) as Record<string, unknown>;
    report(f, { ...out, files: plan.files.length, omitted: plan.omitted });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

function report(f: PublishFlags, r: Record<string, unknown> & { omitted: { name: string; why: string }[] }): void {
  if (f.json) {
    process.stdout.write(JSON.stringify(r) + '\n');
    return;
  }
  for (const o of r.omitted) process.stderr.write(`omitted ${o.name}: ${o.why}\n`);
  const where = r.file ? `wrote ${String(r.file)}` : `published to ${String(r.repository)}`;
  process.stdout.write(`${String(r.module)}@${String(r.version)}: ${where} (${String(r.files)} files, ${String(r.size)} bytes)\n`);
}
