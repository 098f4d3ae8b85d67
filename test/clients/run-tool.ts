/**
 * Runs a container tool (podman, buildah, skopeo) as a child process with an auth file of its own — never the
 * host's credentials; podman and buildah refuse to start unless that file exists — and collects its output.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';

export interface ToolRun {
  code: number | null;
  /** Raw bytes: skopeo's `inspect --raw` output must be hashed exactly. */
  stdoutBytes: Buffer;
  stdout: string;
  stderr: string;
}

export async function runTool(cmd: string, args: string[], opts: { authFile: string; env?: Record<string, string> }): Promise<ToolRun> {
  if (!existsSync(opts.authFile)) await writeFile(opts.authFile, '{"auths":{}}');
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env, REGISTRY_AUTH_FILE: opts.authFile } });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('error', reject);
    child.once('close', (code) => {
      const bytes = Buffer.concat(out);
      resolve({ code, stdoutBytes: bytes, stdout: bytes.toString('utf8'), stderr: err });
    });
  });
}
