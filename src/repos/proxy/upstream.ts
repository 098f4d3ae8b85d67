/**
 * The HTTP client every proxy repository uses to talk to its upstream: one undici dispatcher per repository
 * (custom CA / skip-verify, timeouts, HTTPS_PROXY/NO_PROXY via EnvHttpProxyAgent), upstream authentication
 * (auth.ts), and retries with exponential backoff on 5xx, 429 and connection errors — only before any body
 * byte reached the caller, so a retry never splices two responses.
 */
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { EnvHttpProxyAgent, request, type Dispatcher } from 'undici';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { GranaryError } from '../../server/errors.ts';
import { authorize, challengeOf, type TokenCache } from './auth.ts';
import { UpstreamError } from './upstream-error.ts';
import { proxyOptionsOf, type ProxyOptions } from './options.ts';

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string>;
  /** Null for HEAD and for statuses whose body was drained here. */
  body: Readable | null;
  url: string;
}

export interface UpstreamInit {
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  /** Token scope to ask a Docker token realm for (e.g. `repository:library/alpine:pull`). */
  scope?: string;
  signal?: AbortSignal;
}

export interface UpstreamClient {
  readonly repo: RepositoryRecord;
  readonly opts: ProxyOptions;
  request(url: string, init?: UpstreamInit): Promise<UpstreamResponse>;
  close(): Promise<void>;
}

export { UpstreamError } from './upstream-error.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function flatten(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

function transient(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

/** `onFailure` is told of each request that finally failed (after retries), for the metrics. */
export function createUpstreamClient(repo: RepositoryRecord, tokens: TokenCache, onFailure: () => void = () => {}): UpstreamClient {
  const opts = proxyOptionsOf(repo);
  const connect: Record<string, unknown> = { timeout: opts.timeoutMs };
  if (opts.caFile) connect.ca = readFileSync(opts.caFile);
  if (opts.insecureSkipVerify) connect.rejectUnauthorized = false;
  // EnvHttpProxyAgent reads HTTP(S)_PROXY and NO_PROXY; with none set it connects directly.
  const dispatcher: Dispatcher = new EnvHttpProxyAgent({
    connect,
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    keepAliveTimeout: 30_000,
  });

  async function once(url: string, init: UpstreamInit, authHeader: string | null): Promise<UpstreamResponse> {
    const headers: Record<string, string> = { 'user-agent': 'granary-proxy', ...init.headers };
    if (authHeader) headers.authorization = authHeader;
    const res = await request(url, { method: init.method ?? 'GET', headers, dispatcher, signal: init.signal, maxRedirections: 0 } as Parameters<typeof request>[1]);
    const h = flatten(res.headers as Record<string, string | string[] | undefined>);
    // Blob downloads from registries redirect to storage (S3, a CDN): follow without our credentials.
    if ([301, 302, 303, 307, 308].includes(res.statusCode) && h.location) {
      await res.body.dump();
      const next = new URL(h.location, url).toString();
      const r2 = await request(next, { method: init.method ?? 'GET', headers: { 'user-agent': 'granary-proxy', ...init.headers }, dispatcher, signal: init.signal } as Parameters<typeof request>[1]);
      return finish(r2.statusCode, flatten(r2.headers as Record<string, string | string[] | undefined>), r2.body, next, init);
    }
    return finish(res.statusCode, h, res.body, url, init);
  }

  async function finish(status: number, headers: Record<string, string>, body: Dispatcher.ResponseData['body'], url: string, init: UpstreamInit): Promise<UpstreamResponse> {
    if (init.method === 'HEAD' || status !== 200) {
      await body.dump();
      return { status, headers, body: null, url };
    }
    return { status, headers, body: body as unknown as Readable, url };
  }

  async function attempt(url: string, init: UpstreamInit): Promise<UpstreamResponse> {
    // A request with a token scope speaks Docker token auth: like docker itself it lets the upstream's challenge
    // decide (credentials go to the token realm); others send Basic credentials up front (Maven, Go, npm).
    const first = await authorize(tokens, opts, url, init.scope, dispatcher, null);
    const sent = init.scope && first?.startsWith('Basic ') ? null : first;
    let res = await once(url, init, sent);
    if (res.status === 401) {
      const header = res.headers['www-authenticate'] ?? '';
      const ch = challengeOf(header);
      if (ch) {
        const auth = await authorize(tokens, opts, url, init.scope, dispatcher, ch);
        if (auth) res = await once(url, init, auth);
      } else if (/^basic\b/i.test(header) && first?.startsWith('Basic ') && sent === null) {
        res = await once(url, init, first);
      }
    }
    return res;
  }

  return {
    repo,
    opts,
    async request(url, init = {}) {
      try {
        return await requestWithRetries(url, init);
      } catch (e) {
        onFailure();
        throw e;
      }
    },
    close: () => dispatcher.close(),
  };

  async function requestWithRetries(url: string, init: UpstreamInit): Promise<UpstreamResponse> {
    let lastError: unknown;
    for (let i = 0; i <= opts.retries; i++) {
      if (i > 0) await sleep(Math.min(200 * 2 ** (i - 1), 5_000));
      try {
        const res = await attempt(url, init);
        if (res.status === 401 || res.status === 403) {
          throw new UpstreamError(
            `upstream ${new URL(url).origin} refused the proxy's credentials (HTTP ${res.status}) for ${new URL(url).pathname}: check the upstream auth of repository ${repo.name}`,
            res.status,
          );
        }
        if (transient(res.status)) {
          lastError = new UpstreamError(`upstream ${new URL(url).origin} answered HTTP ${res.status} for ${new URL(url).pathname}`, res.status);
          continue;
        }
        return res;
      } catch (e) {
        if (e instanceof UpstreamError && e.upstreamStatus !== null && !transient(e.upstreamStatus)) throw e;
        if (e instanceof GranaryError && !(e instanceof UpstreamError)) throw e;
        if (init.signal?.aborted) throw e;
        lastError = e instanceof UpstreamError ? e : new UpstreamError(`upstream ${new URL(url).origin} unreachable: ${(e as Error).message}`, null, e);
      }
    }
    throw lastError;
  }
}
