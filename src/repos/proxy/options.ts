/**
 * The proxy settings of a repository: `config.options.proxy`, shared by every format (validate.ts checks it
 * against ProxyOptionsSchema before the format sees the rest of `options`, so no format has to declare it).
 * Secrets may be given inline or, better, by the name of an environment variable (`passwordEnv`…), so that the
 * repository record — which the management API shows — need not hold them.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { RepositoryRecord } from '../../meta/repos.ts';

export const PROXY_OPTIONS_KEY = 'proxy';

const Secret = (what: string) => ({
  [what]: Type.Optional(Type.String({ minLength: 1 })),
  [`${what}Env`]: Type.Optional(Type.String({ minLength: 1, description: `environment variable holding the ${what}` })),
});

export const ProxyAuthSchema = Type.Union([
  Type.Object({ type: Type.Literal('none') }, { additionalProperties: false }),
  // Basic credentials: sent as they are, and also used at a Docker token realm when the upstream challenges.
  Type.Object({ type: Type.Literal('basic'), username: Type.String({ minLength: 1 }), ...Secret('password') }, { additionalProperties: false }),
  // A static bearer token (a PAT, a long-lived registry token): sent on every request, never exchanged.
  Type.Object({ type: Type.Literal('bearer'), ...Secret('token') }, { additionalProperties: false }),
  // OAuth2 refresh-token exchange at the challenge's realm (Azure Container Registry, Distribution's oauth.md).
  Type.Object({ type: Type.Literal('oauth2'), ...Secret('refreshToken') }, { additionalProperties: false }),
]);

export const ProxyOptionsSchema = Type.Object(
  {
    auth: Type.Optional(ProxyAuthSchema),
    /** PEM bundle trusted for the upstream's TLS certificate (a file path). */
    caFile: Type.Optional(Type.String({ minLength: 1 })),
    insecureSkipVerify: Type.Optional(Type.Boolean()),
    /** Connect + response-headers timeout, and the longest pause between body chunks. */
    timeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 600_000 })),
    /** Retries after a 5xx, 429 or connection error, with exponential backoff (not once bytes were sent on). */
    retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 10 })),
    /** How long mutable metadata (tags, lists, indexes) is served without asking the upstream again. */
    metadataTtlSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 30 * 86_400 })),
    /** How long an upstream "not found" is remembered. */
    negativeTtlSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400 })),
    /** OCI: registry hosts this proxy mirrors, for containerd's `?ns=<host>` (default: the upstream's host). */
    hosts: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    /** OCI: prefix one-segment names with `library/` (default: on for Docker Hub upstreams). */
    dockerHubLibrary: Type.Optional(Type.Boolean()),
    /** Retention: cached objects nobody read for this many days are removed (retention.ts). Absent: kept forever. */
    unusedDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 36_500 })),
  },
  { additionalProperties: false },
);

export type ProxyOptionsInput = Static<typeof ProxyOptionsSchema>;

export type UpstreamAuth =
  | { type: 'none' }
  | { type: 'basic'; username: string; password: string }
  | { type: 'bearer'; token: string }
  | { type: 'oauth2'; refreshToken: string };

export interface ProxyOptions {
  upstream: string;
  auth: UpstreamAuth;
  caFile?: string;
  insecureSkipVerify: boolean;
  timeoutMs: number;
  retries: number;
  metadataTtlMs: number;
  negativeTtlMs: number;
  hosts: string[];
  dockerHubLibrary: boolean;
  /** Days without a read after which a cached object is removed; undefined = kept forever. */
  unusedDays?: number;
}

export const PROXY_DEFAULTS = { timeoutMs: 30_000, retries: 2, metadataTtlSeconds: 300, negativeTtlSeconds: 30 } as const;

const DOCKER_HUB_HOSTS = new Set(['registry-1.docker.io', 'index.docker.io', 'docker.io', 'registry.hub.docker.com']);

export function isDockerHub(upstream: string): boolean {
  return DOCKER_HUB_HOSTS.has(new URL(upstream).hostname);
}

/** The registry hosts an OCI proxy mirrors: as configured, else its upstream's host (and `docker.io` for Docker Hub). */
export function mirrorHostsOf(upstream: string, hosts?: string[]): string[] {
  if (hosts?.length) return hosts;
  const host = new URL(upstream).host;
  return isDockerHub(upstream) ? ['docker.io', host] : [host];
}

function secret(o: Record<string, unknown>, key: string, env: NodeJS.ProcessEnv): string {
  const inline = o[key];
  if (typeof inline === 'string') return inline;
  const name = o[`${key}Env`];
  if (typeof name === 'string') {
    const v = env[name];
    if (v === undefined) throw new Error(`environment variable ${name} (${key}Env of the upstream auth) is not set`);
    return v;
  }
  throw new Error(`upstream auth needs ${key} or ${key}Env`);
}

/** The repository's proxy settings with defaults applied; secrets resolved from the environment. */
export function proxyOptionsOf(repo: RepositoryRecord, env: NodeJS.ProcessEnv = process.env): ProxyOptions {
  if (repo.kind !== 'proxy' || !repo.config.upstream) throw new Error(`${repo.name} is not a proxy repository`);
  const o = (repo.config.options?.[PROXY_OPTIONS_KEY] ?? {}) as ProxyOptionsInput;
  const a = (o.auth ?? { type: 'none' }) as Record<string, unknown> & { type: UpstreamAuth['type'] };
  let auth: UpstreamAuth;
  if (a.type === 'basic') auth = { type: 'basic', username: a.username as string, password: secret(a, 'password', env) };
  else if (a.type === 'bearer') auth = { type: 'bearer', token: secret(a, 'token', env) };
  else if (a.type === 'oauth2') auth = { type: 'oauth2', refreshToken: secret(a, 'refreshToken', env) };
  else auth = { type: 'none' };
  const upstream = repo.config.upstream.replace(/\/+$/, '');
  return {
    upstream,
    auth,
    caFile: o.caFile,
    insecureSkipVerify: o.insecureSkipVerify ?? false,
    timeoutMs: o.timeoutMs ?? PROXY_DEFAULTS.timeoutMs,
    retries: o.retries ?? PROXY_DEFAULTS.retries,
    metadataTtlMs: (o.metadataTtlSeconds ?? PROXY_DEFAULTS.metadataTtlSeconds) * 1000,
    negativeTtlMs: (o.negativeTtlSeconds ?? PROXY_DEFAULTS.negativeTtlSeconds) * 1000,
    hosts: mirrorHostsOf(upstream, o.hosts),
    dockerHubLibrary: o.dockerHubLibrary ?? isDockerHub(upstream),
    unusedDays: o.unusedDays,
  };
}

/** The retention setting alone: the sweep must not depend on upstream secrets resolving. */
export function unusedDaysOf(repo: RepositoryRecord): number | undefined {
  if (repo.kind !== 'proxy') return undefined;
  return ((repo.config.options?.[PROXY_OPTIONS_KEY] ?? {}) as ProxyOptionsInput).unusedDays;
}

const SECRET_KEYS = ['password', 'token', 'refreshToken'];
export const REDACTED = '***';

/**
 * A repository's options with inline upstream secrets replaced by "***", for anything that shows a repository
 * to people (the management API's repository JSON should pass its options through this).
 */
export function redactProxySecrets(options: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  const proxy = options?.[PROXY_OPTIONS_KEY] as { auth?: Record<string, unknown> } | undefined;
  if (!proxy?.auth) return options;
  const auth = Object.fromEntries(Object.entries(proxy.auth).map(([k, v]) => [k, SECRET_KEYS.includes(k) ? REDACTED : v]));
  return { ...options, [PROXY_OPTIONS_KEY]: { ...proxy, auth } };
}

/**
 * The inverse for updates: a client that read a repository, changed something and sent the options back carries
 * "***" where a secret was — keep the stored secret there instead of saving the placeholder.
 */
export function keepRedactedSecrets(next: Record<string, unknown> | undefined, current: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  const auth = (next?.[PROXY_OPTIONS_KEY] as { auth?: Record<string, unknown> } | undefined)?.auth;
  const stored = (current?.[PROXY_OPTIONS_KEY] as { auth?: Record<string, unknown> } | undefined)?.auth;
  if (!auth || !Object.values(auth).includes(REDACTED)) return next;
  const merged = Object.fromEntries(Object.entries(auth).map(([k, v]) => [k, v === REDACTED && SECRET_KEYS.includes(k) ? stored?.[k] : v]));
  const proxy = next![PROXY_OPTIONS_KEY] as Record<string, unknown>;
  return { ...next, [PROXY_OPTIONS_KEY]: { ...proxy, auth: merged } };
}
