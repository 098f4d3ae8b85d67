/**
 * Starts a real Granary server on 127.0.0.1, port 0, in a fresh temp data dir — the same code path as
 * `granary serve`, minus signal handling. Tests talk to it with fetch over loopback.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type ResolvedConfig } from '../../src/config/load.ts';
import { createLogger, createServices } from '../../src/server/bootstrap.ts';
import { buildApp } from '../../src/server/app.ts';
import type { Services } from '../../src/server/services.ts';
import { createTestDatabase } from './pg.ts';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

export interface TestServer {
  url: string;
  dataDir: string;
  config: ResolvedConfig;
  services: Services;
  app: FastifyInstance;
  /** fetch relative to the server, with the admin token unless `auth` says otherwise (null = anonymous). */
  fetch(path: string, init?: RequestInit & { auth?: string | null }): Promise<Response>;
  /** JSON request helper against /api/v1, as admin unless told. */
  api<T = unknown>(method: string, path: string, body?: unknown, auth?: string | null): Promise<{ status: number; body: T; headers: Headers }>;
  close(): Promise<void>;
}

/**
 * With GRANARY_TEST_DATABASE=postgres every server gets a throwaway PostgreSQL database instead of SQLite, so
 * any server-level test file can be run against PostgreSQL.
 */
async function databaseFor(opts: { config?: Record<string, unknown> }): Promise<{ database?: Record<string, unknown>; drop?: () => Promise<void> }> {
  if (opts.config?.database || process.env.GRANARY_TEST_DATABASE !== 'postgres') return {};
  const db = await createTestDatabase();
  if (typeof db === 'string') throw new Error(db);
  return { database: { driver: 'postgres', url: db.url, poolSize: 5 }, drop: db.drop };
}

export async function startServer(opts: { config?: Record<string, unknown>; dataDir?: string; env?: NodeJS.ProcessEnv } = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'granary-test-')));
  const pg = await databaseFor(opts);
  const config = loadConfig({
    base: {
      logLevel: 'silent',
      ...opts.config,
      ...(pg.database ? { database: pg.database } : {}),
      dataDir,
      host: '127.0.0.1',
      port: 0,
      auth: { adminToken: ADMIN_TOKEN, ...((opts.config?.auth as object) ?? {}) },
    },
    env: opts.env ?? {},
  });
  const started = await createServices(config, createLogger(config));
  const app = await buildApp(started.services);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const authHeader = (auth: string | null | undefined): Record<string, string> => {
    const a = auth === undefined ? ADMIN_TOKEN : auth;
    if (a === null) return {};
    // A value with a space is a whole header ("Basic …", "Digest …"); a bare value is a bearer token.
    return { authorization: a.includes(' ') ? a : `Bearer ${a}` };
  };
  const doFetch = (path: string, init: RequestInit & { auth?: string | null } = {}) => {
    const { auth, headers, ...rest } = init;
    return fetch(url + path, { ...rest, headers: { ...authHeader(auth), ...(headers as Record<string, string> | undefined) } });
  };
  return {
    url,
    dataDir,
    config,
    services: started.services,
    app,
    fetch: doFetch,
    async api<T>(method: string, path: string, body?: unknown, auth?: string | null) {
      const res = await doFetch(`/api/v1${path}`, {
        method,
        auth,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T, headers: res.headers };
    },
    async close() {
      await app.close();
      await started.close();
      await pg.drop?.();
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function basic(user: string, secret: string): string {
  return 'Basic ' + Buffer.from(`${user}:${secret}`).toString('base64');
}
