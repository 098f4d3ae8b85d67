/**
 * Child processes that listen on port 0 and log nothing about it (Granary at level warn, docker-registry at
 * error): their port is read from /proc. Shared by the tests and the benchmarks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The TCP port `pid` listens on, from its socket inodes and /proc/net/tcp{,6}; null while it has none. */
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

/**
 * Waits (30 s at most) until `child` listens and `probe` answers `ok(status)`; returns its base URL. A child that
 * exits first fails with its log.
 */
export async function waitListening(child: ChildProcess, label: string, logFile: string, probe: string, ok: (status: number) => boolean = (s) => s < 500): Promise<string> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${label} exited with ${child.exitCode}; see ${logFile}:\n${await readFile(logFile, 'utf8').catch(() => '')}`);
    const port = await listeningPort(child.pid!);
    if (port) {
      const base = `http://127.0.0.1:${port}`;
      if (await fetch(base + probe).then((r) => (void r.body?.cancel(), ok(r.status)), () => false)) return base;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${label} did not start listening within 30 s`);
}

/** SIGTERM, SIGKILL after 10 s; resolves once it exited. */
export async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await once(child, 'exit');
  clearTimeout(timer);
}

/** `bin/granary serve` on port 0 with data under `dir/data`, the given admin token and a log in `dir`. */
export async function spawnGranary(dir: string, adminToken: string): Promise<{ child: ChildProcess; base: string }> {
  await mkdir(dir, { recursive: true });
  const log = join(dir, 'granary.log');
  const fd = openSync(log, 'a');
  const child = spawn(join(ROOT, 'bin', 'granary'), ['serve', '--host', '127.0.0.1', '--port', '0', '--data-dir', join(dir, 'data')], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, GRANARY_ADMIN_TOKEN: adminToken, GRANARY_LOG_LEVEL: 'warn' },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  return { child, base: await waitListening(child, 'granary', log, '/healthz', (s) => s === 200) };
}
