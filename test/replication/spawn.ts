/**
 * `granary serve` as a separate process for multi-node tests: a clean environment plus what the test passes
 * (replica flags, a fixed port to restart a primary on), SIGKILL on demand and at the end. Spawning itself is
 * test/helpers/processes.ts `spawnGranary`, shared with the scale tests and the benchmarks.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { spawnGranary } from '../helpers/processes.ts';

export interface Node {
  child: ChildProcess;
  url: string;
  port: number;
  output(): string;
  kill(): Promise<void>;
}

const running = new Set<ChildProcess>();

/** Kills every node still running (call from `after`). */
export function killAll(): void {
  for (const c of running) c.kill('SIGKILL');
}

/** The log goes to `<dataDir>.log`, beside the data dir; the log level is info unless `env` says otherwise. */
export async function serveNode(opts: { cwd: string; dataDir: string; port?: number; args?: string[]; env?: Record<string, string> }): Promise<Node> {
  const p = await spawnGranary({
    dir: opts.cwd,
    dataDir: opts.dataDir,
    logFile: `${opts.dataDir}.log`,
    port: opts.port,
    args: opts.args,
    logLevel: 'info',
    env: { NODE_COMPILE_CACHE: join(opts.cwd, '.compile-cache'), ...opts.env },
  });
  running.add(p.child);
  p.child.once('exit', () => running.delete(p.child));
  return { child: p.child, url: p.base, port: p.port, output: p.output, kill: () => p.stop('SIGKILL') };
}
