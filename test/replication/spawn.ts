/**
 * `granary serve` as a separate process for multi-node tests: a clean environment plus what the test passes,
 * the address read from the "granary listening" log line, SIGKILL on demand and at the end.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { GRANARY_BIN } from '../helpers/cli.ts';

export interface Node {
  child: ChildProcessWithoutNullStreams;
  url: string;
  port: number;
  output(): string;
  kill(): Promise<void>;
}

const running = new Set<ChildProcessWithoutNullStreams>();

/** Kills every node still running (call from `after`). */
export function killAll(): void {
  for (const c of running) c.kill('SIGKILL');
}

export async function serveNode(opts: { cwd: string; dataDir: string; port?: number; args?: string[]; env?: Record<string, string> }): Promise<Node> {
  const child = spawn(GRANARY_BIN, ['serve', '--port', String(opts.port ?? 0), '--data-dir', opts.dataDir, ...(opts.args ?? [])], {
    cwd: opts.cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: opts.cwd, NODE_COMPILE_CACHE: join(opts.cwd, '.compile-cache'), ...opts.env },
  });
  running.add(child);
  let out = '';
  const exited = once(child, 'close').then(() => running.delete(child));
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (d: string) => {
      out += d;
      const m = /"address":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*"msg":"granary listening"/.exec(out);
      if (m) resolve(m[1]);
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    void exited.then(() => reject(new Error(`granary serve exited before listening:\n${out}`)));
  });
  return {
    child,
    url,
    port: Number(new URL(url).port),
    output: () => out,
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
