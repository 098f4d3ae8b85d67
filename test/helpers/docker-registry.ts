/**
 * Debian's `docker-registry` (CNCF Distribution 2.8) as a child process on 127.0.0.1 port 0: the upstream of
 * proxy tests, the remote of mirroring tests, and the peer of the benchmarks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stopChild, waitListening } from './processes.ts';

export interface Registry {
  base: string;
  /** `127.0.0.1:<port>`, as image references name it. */
  host: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Storage under `dir/data`; manifest DELETE enabled unless `deletes: false`. */
export async function startRegistry(dir: string, opts: { deletes?: boolean; bin?: string } = {}): Promise<Registry> {
  const bin = opts.bin ?? process.env.DOCKER_REGISTRY ?? 'docker-registry';
  await mkdir(dir, { recursive: true });
  const conf = join(dir, 'registry.yml');
  const storage = ['storage:', '  filesystem:', `    rootdirectory: ${join(dir, 'data')}`, ...(opts.deletes === false ? [] : ['  delete:', '    enabled: true'])];
  await writeFile(conf, ['version: 0.1', 'log:', '  level: error', '  accesslog:', '    disabled: true', ...storage, 'http:', '  addr: 127.0.0.1:0', ''].join('\n'));
  const log = join(dir, 'registry.log');
  const fd = openSync(log, 'a');
  const child = spawn(bin, ['serve', conf], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  try {
    const base = await waitListening(child, 'docker-registry', log, '/v2/', (s) => s === 200);
    return { base, host: new URL(base).host, child, stop: () => stopChild(child) };
  } catch (e) {
    await stopChild(child);
    throw e;
  }
}
