/**
 * Runs the real `go` command against Granary the way CLIENTS.md §3 found it works offline: a fresh GOPATH,
 * module cache, build cache and HOME per workspace,
 * GOFLAGS=-mod=mod, GONOSUMDB for the test's module prefix — never GOPRIVATE, which would bypass the proxy —
 * and nothing inherited from the host's Go environment.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface GoRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Why the go tests cannot run here, or false. */
export function missingGo(): string | false {
  const r = spawnSync('go', ['version'], { encoding: 'utf8' });
  return r.status === 0 ? false : 'go is not on PATH (apt-get install -y golang-go)';
}

export interface GoWorkspace {
  dir: string;
  env: Record<string, string>;
  go(args: string[], opts?: { cwd?: string; env?: Record<string, string> }): Promise<GoRun>;
}

/**
 * `nosumdb`: GONOSUMDB prefixes (the default GOSUMDB stays on for everything else); `gosumdb`: a GOSUMDB value
 * to verify everything against; neither: GOSUMDB=off.
 */
export async function goWorkspace(o: { goproxy: string; nosumdb?: string; gosumdb?: string }): Promise<GoWorkspace> {
  const dir = await mkdtemp(join(tmpdir(), 'granary-go-'));
  const home = join(dir, 'home');
  await mkdir(home);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    GOPATH: join(dir, 'gopath'),
    GOMODCACHE: join(dir, 'gopath', 'pkg', 'mod'),
    GOCACHE: join(dir, 'gocache'),
    GOENV: 'off',
    GOFLAGS: '-mod=mod',
    GOPROXY: o.goproxy,
    GO111MODULE: 'on',
    CGO_ENABLED: '0',
    ...(o.gosumdb ? { GOSUMDB: o.gosumdb } : o.nosumdb ? { GONOSUMDB: o.nosumdb } : { GOSUMDB: 'off' }),
  };
  return {
    dir,
    env,
    go(args, opts = {}) {
      return new Promise((resolve, reject) => {
        const child = spawn('go', args, { cwd: opts.cwd ?? dir, env: { ...env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
        child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
        child.once('error', reject);
        child.once('close', (code) => resolve({ code, stdout, stderr }));
      });
    },
  };
}
