/** Debian's docker-registry (CNCF Distribution 2.8) on a free loopback port, as the remote of the mirroring tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { until } from './helpers.ts';

export interface DockerRegistry {
  url: string;
  host: string;
  process: ChildProcess;
  stop(): void;
}

async function freePort(): Promise<number> {
  const srv = createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  return port;
}

/** Starts it with its storage under `dir`; `deletes` enables manifest DELETE (off by default in Distribution). */
export async function startDockerRegistry(dir: string, opts: { deletes?: boolean } = {}): Promise<DockerRegistry> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const conf = join(dir, 'registry.yml');
  const storage = ['storage:', '  filesystem:', `    rootdirectory: ${join(dir, 'reg')}`, ...(opts.deletes ? ['  delete:', '    enabled: true'] : [])];
  await writeFile(conf, ['version: 0.1', 'log:', '  level: error', '  accesslog:', '    disabled: true', ...storage, 'http:', `  addr: 127.0.0.1:${port}`, ''].join('\n'));
  const child = spawn('docker-registry', ['serve', conf], { stdio: 'ignore' });
  await until('docker-registry to listen', async () => ((await fetch(`${url}/v2/`).catch(() => null))?.status === 200 ? true : undefined));
  return { url, host: `127.0.0.1:${port}`, process: child, stop: () => void child.kill('SIGKILL') };
}
