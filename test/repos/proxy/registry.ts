/**
 * Debian's `docker-registry` (CNCF Distribution 2.8) as a child process on 127.0.0.1 port 0, for proxy tests
 * and the proxy benchmark: the port is read from /proc (it logs nothing at level error), as bench/oci.ts does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, readdir, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface Registry {
  base: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function listeningPort(pid: number): Promise<number | null> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
    if (m) inodes.add(m[1]);
  }
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of (await readFile(table, 'utf8').catch(() => '')).split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] === '0A' && inodes.has(f[9])) return parseInt(f[1].split(':')[1], 16);
    }
  }
  return null;
}

export async function startRegistry(dir: string, bin = process.env.DOCKER_REGISTRY ?? 'docker-registry'): Promise<Registry> {
  await mkdir(dir, { recursive: true });
  const conf = join(dir, 'registry.yml');
  await writeFile(
    conf,
    ['version: 0.1', 'log:', '  level: error', '  accesslog:', '    disabled: true', 'storage:', '  filesystem:', `    rootdirectory: ${join(dir, 'data')}`, '  delete:', '    enabled: true', 'http:', '  addr: 127.0.0.1:0', ''].join('\n'),
  );
  const log = join(dir, 'registry.log');
  const fd = openSync(log, 'a');
  const child = spawn(bin, ['serve', conf], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await once(child, 'exit');
    clearTimeout(t);
  };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}:\n${await readFile(log, 'utf8').catch(() => '')}`);
    const port = await listeningPort(child.pid!);
    if (port) {
      const base = `http://127.0.0.1:${port}`;
      if (await fetch(`${base}/v2/`).then((r) => (void r.body?.cancel(), r.status === 200), () => false)) return { base, child, stop };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error('docker-registry did not start listening within 30 s');
}
