/**
 * Child processes that listen on port 0 and may log nothing about it (Granary at level warn, docker-registry at
 * error): their port is read from /proc. `spawnGranary` is the one way tests and benchmarks start `bin/granary
 * serve`, so how a start is awaited, and how a crash before listening is reported, is decided here once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync } from 'node:fs';
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
 * exits (or is killed, or cannot be spawned) first fails with its log.
 */
export async function waitListening(child: ChildProcess, label: string, logFile: string, probe: string, ok: (status: number) => boolean = (s) => s < 500): Promise<string> {
  let spawnError: Error | undefined;
  const onError = (e: Error) => (spawnError = e);
  child.once('error', onError);
  try {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (spawnError) throw new Error(`${label} could not be started: ${spawnError.message}`);
      if (child.exitCode !== null || child.signalCode !== null) {
        const how = child.exitCode !== null ? `exited with ${child.exitCode}` : `was killed by ${child.signalCode}`;
        throw new Error(`${label} ${how} before listening; see ${logFile}:\n${await readFile(logFile, 'utf8').catch(() => '')}`);
      }
      const port = child.pid === undefined ? null : await listeningPort(child.pid);
      if (port) {
        const base = `http://127.0.0.1:${port}`;
        if (await fetch(base + probe).then((r) => (void r.body?.cancel(), ok(r.status)), () => false)) return base;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${label} did not start listening within 30 s; see ${logFile}`);
  } finally {
    child.off('error', onError);
  }
}

/** Sends `signal` (SIGTERM by default, then SIGKILL after 10 s); resolves once it exited. */
export async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = signal === 'SIGKILL' ? undefined : setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export interface SpawnGranaryOptions {
  /** Working directory and HOME of the process; created if missing. */
  dir: string;
  /** --data-dir (default `dir/data`). */
  dataDir?: string;
  /** Where stdout and stderr are appended (default `dir/granary.log`). */
  logFile?: string;
  /** --port: 0 (the default) lets the kernel pick; the port taken is read from /proc either way. */
  port?: number;
  /** GRANARY_ADMIN_TOKEN, when given. */
  adminToken?: string;
  /** GRANARY_LOG_LEVEL (default warn: a quiet log; `env` may still override it). */
  logLevel?: string;
  /** More CLI arguments after `serve --host --port --data-dir`. */
  args?: string[];
  /** More environment, over a clean one (PATH, HOME and the above): nothing leaks in from the test's own. */
  env?: Record<string, string>;
}

export interface GranaryProcess {
  child: ChildProcess;
  /** `http://127.0.0.1:<port>`. */
  base: string;
  port: number;
  /** The log file (stdout and stderr). */
  log: string;
  /** The log so far. */
  output(): string;
  /** Sends `signal` (SIGTERM by default, SIGKILL after 10 s) and resolves once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * `bin/granary serve` on 127.0.0.1, resolved once it listens and /healthz answers 200. A process that exits
 * before that is stopped and reported with its log.
 */
export async function spawnGranary(o: SpawnGranaryOptions): Promise<GranaryProcess> {
  await mkdir(o.dir, { recursive: true });
  const log = o.logFile ?? join(o.dir, 'granary.log');
  const dataDir = o.dataDir ?? join(o.dir, 'data');
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: o.dir, GRANARY_LOG_LEVEL: o.logLevel ?? 'warn' };
  if (o.adminToken !== undefined) env.GRANARY_ADMIN_TOKEN = o.adminToken;
  const fd = openSync(log, 'a');
  const args = ['serve', '--host', '127.0.0.1', '--port', String(o.port ?? 0), '--data-dir', dataDir, ...(o.args ?? [])];
  const child = spawn(join(ROOT, 'bin', 'granary'), args, { cwd: o.dir, env: { ...env, ...o.env }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let base: string;
  try {
    base = await waitListening(child, `granary (${dataDir})`, log, '/healthz', (s) => s === 200);
  } catch (e) {
    await stopChild(child, 'SIGKILL');
    throw e;
  }
  return {
    child,
    base,
    port: Number(new URL(base).port),
    log,
    output: () => readFileSync(log, 'utf8'),
    stop: (signal) => stopChild(child, signal),
  };
}
