/**
 * What the management commands talk to: a running server (`--url` + `--token`, or GRANARY_URL and
 * GRANARY_TOKEN) over the HTTP API, or — without a URL — the local data dir directly, through the same
 * services the API uses (so the rules are the same either way).
 */
import { loadConfig } from '../config/load.ts';
import { openMeta } from '../server/bootstrap.ts';
import { RepoService, type CreateRepositoryInput } from '../repos/service.ts';
import { AccountService } from '../auth/accounts.ts';
import { findFormat } from '../formats/registry.ts';
import { repoJson } from '../api/repositories.ts';
import type { RepositoryJson, TokenJson, UserJson } from '../api/schemas.ts';
import type { Role } from '../meta/tables.ts';
import { CliError, type BackendFlags } from './flags.ts';

export { CliError, withBackendFlags, type BackendFlags } from './flags.ts';

export interface Backend {
  listRepos(): Promise<RepositoryJson[]>;
  createRepo(i: CreateRepositoryInput): Promise<RepositoryJson>;
  removeRepo(name: string): Promise<void>;
  listUsers(): Promise<UserJson[]>;
  addUser(i: { name: string; password?: string; admin?: boolean }): Promise<UserJson>;
  removeUser(name: string): Promise<void>;
  grant(i: { user: string; repository: string; role: Role }): Promise<void>;
  createToken(i: { user?: string; name: string; readOnly?: boolean; expiresInDays?: number }): Promise<{ token: string; info: TokenJson }>;
  /**
   * Tokens of `user`; without one, the caller's own over HTTP, or — `all`, or on the local data dir, where there is
   * no caller — every user's.
   */
  listTokens(user?: string, all?: boolean): Promise<TokenJson[]>;
  revokeToken(id: string): Promise<void>;
  close(): Promise<void>;
}

function httpBackend(base: string, token: string | undefined): Backend {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(new URL(`/api/v1${path}`, base), {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new CliError(`${method} ${path}: HTTP ${res.status}: ${text.slice(0, 200)}`);
    }
    if (!res.ok) {
      const e = (json as { error?: { message?: string } }).error;
      throw new CliError(`${e?.message ?? `HTTP ${res.status}`}${res.status === 401 && !token ? ' (pass --token or GRANARY_TOKEN)' : ''}`);
    }
    return json as T;
  };
  const enc = encodeURIComponent;
  return {
    listRepos: async () => (await call<{ repositories: RepositoryJson[] }>('GET', '/repositories')).repositories,
    createRepo: (i) => call('POST', '/repositories', i),
    removeRepo: (name) => call('DELETE', `/repositories/${enc(name)}`),
    listUsers: async () => (await call<{ users: UserJson[] }>('GET', '/users')).users,
    addUser: (i) => call('POST', '/users', i),
    removeUser: (name) => call('DELETE', `/users/${enc(name)}`),
    grant: (i) => call('PUT', '/bindings', i),
    createToken: (i) => call('POST', '/tokens', i),
    listTokens: async (user, all) => (await call<{ tokens: TokenJson[] }>('GET', `/tokens${user ? `?user=${enc(user)}` : all ? '?all=true' : ''}`)).tokens,
    revokeToken: (id) => call('DELETE', `/tokens/${enc(id)}`),
    close: async () => {},
  };
}

async function localBackend(f: BackendFlags): Promise<Backend> {
  const config = loadConfig({ file: f.config, overrides: f.dataDir ? { dataDir: f.dataDir } : {} });
  const meta = await openMeta(config);
  const repos = new RepoService(meta, findFormat, { defaultAnonymousRead: config.auth.anonymousRead });
  const accounts = new AccountService(meta, { tokenTtlDays: config.auth.tokenTtlDays });
  const actor = 'cli';
  const withUser = async <T extends { userId: number }>(t: T) => {
    const users = await accounts.listUsers();
    return { ...t, user: users.find((u) => u.id === t.userId)?.name ?? '?' };
  };
  const strip = <T extends { id?: number }>(u: T) => {
    const { id: _id, ...rest } = u;
    return rest;
  };
  return {
    listRepos: async () => (await repos.list()).map(repoJson),
    createRepo: async (i) => repoJson(await repos.create(i, actor)),
    removeRepo: (name) => repos.remove(name, actor),
    listUsers: async () => (await accounts.listUsers()).map(strip),
    addUser: async (i) => strip(await accounts.addUser(i, actor)),
    removeUser: (name) => accounts.removeUser(name, actor),
    grant: (i) => accounts.grant(i, actor),
    createToken: async (i) => {
      if (!i.user) throw new CliError('local mode needs --user: there is no signed-in user');
      const t = await accounts.createToken({ ...i, user: i.user }, actor);
      return { token: t.token, info: await withUser(t.info) };
    },
    listTokens: (user) => accounts.listTokens(user),
    revokeToken: (id) => accounts.revokeToken(id, actor),
    close: () => meta.close(),
  };
}

export async function openBackend(f: BackendFlags): Promise<Backend> {
  const url = f.url ?? process.env.GRANARY_URL;
  if (url) return httpBackend(url, f.token ?? process.env.GRANARY_TOKEN);
  return localBackend(f);
}

/** Runs a command against a backend and always closes it. */
export async function withBackend<T>(f: BackendFlags, fn: (b: Backend) => Promise<T>): Promise<T> {
  const b = await openBackend(f);
  try {
    return await fn(b);
  } finally {
    await b.close();
  }
}
