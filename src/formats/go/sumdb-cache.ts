/**
 * The checksum-database cache: answers of a sumdb are kept as assets of the Go repository that forwards it, so
 * `go` keeps verifying modules it (or anyone behind this Granary) verified before while sum.golang.org is down —
 * the promise proxies make for module files, kept for their checksums too. Stored with storeAsset, the answers are
 * verified, replicated and garbage-collected like every other asset.
 *
 * What may be kept for how long follows from the log being append-only (go.dev/design/25530-sumdb):
 *   - `lookup/<module>@<version>`: a record never changes once in the log; the signed tree head that comes with it
 *     may be older than the client's, which golang.org/x/mod/sumdb's client accepts: Client.Lookup hands the note to
 *     mergeLatest, which checks that an older tree is a prefix of the latest one it knows (checkTrees), and
 *     checkRecord then authenticates the record against that latest tree. So a lookup is fetched once, kept for good.
 *   - full tiles (`tile/H/L/NNN`, `tile/H/data/NNN`): fixed once the log has grown past them; kept for good.
 *   - `latest` and partial tiles (`.p/W`): served from the cache for the repository's `metadataTtlSeconds` (60 s
 *     without one), then fetched again; when the sumdb cannot answer (down, 5xx, 429) the cached copy is served
 *     whatever its age, marked stale.
 * 404/410 are never cached (the sumdb may learn the module later). Nothing here is trusted: `go` checks signatures
 * and proofs on every answer, cached or not.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { EnvHttpProxyAgent, fetch } from 'undici';
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { getAsset, type Asset } from '../../meta/assets.ts';
import { storeAsset } from '../../repos/content.ts';
import { PROXY_OPTIONS_KEY, countCacheHit } from '../../repos/proxy/index.ts';
import { GranaryError } from '../../server/errors.ts';

/** One request to one checksum database: its name, its base URL, and the operation (`latest`, `lookup/…`, `tile/…`). */
export interface SumdbOp {
  name: string;
  upstream: string;
  op: string;
}

export type SumdbAnswer =
  | { kind: 'cached'; asset: Asset; stale: boolean }
  /** Fetched but not stored: a read-only replica serves what the sumdb said (its cache is the primary's, replicated). */
  | { kind: 'live'; body: Buffer; contentType: string };

const UPSTREAM_TIMEOUT_MS = 30_000;
const DEFAULT_TTL_SECONDS = 60;
const MIB = 1024 * 1024;
const MAX_FRESH_ENTRIES = 10_000;

/**
 * HTTPS_PROXY / HTTP_PROXY / NO_PROXY apply as for proxy upstreams (docs/proxy.md). Not the proxy repositories'
 * own clients: those carry the upstream's credentials, which must never travel to a checksum database.
 */
let dispatcher: EnvHttpProxyAgent | null = null;

/**
 * Where an answer is cached in the repository. No module can own this path: module paths need a dot in their first
 * element (checkModulePath in module.ts, as x/mod's module.CheckPath), and `_sumdb` has none.
 */
export const cachePath = (t: SumdbOp): string => `_sumdb/${t.name}/${t.op}`;

/** Lookups and full tiles never change in a transparency log; `latest` and partial tiles do. */
export const isImmutable = (op: string): boolean => op.startsWith('lookup/') || (op.startsWith('tile/') && !op.includes('.p/'));

/**
 * The most bytes an answer may have (bigger ones are refused, not stored). A hash tile of height H holds at most
 * 2^H hashes of 32 bytes (tlog's tile layout: 8 KiB for sum.golang.org's H=8); a data tile holds 2^H records of a
 * few hundred bytes, allowed 4 KiB each; a lookup or signed tree head is a few lines. Never above 16 MiB.
 */
export function sizeCap(op: string): number {
  const tile = /^tile\/([0-9]+)\/(data|[0-9]+)\//.exec(op);
  if (!tile) return MIB;
  const width = 2 ** Math.min(Number(tile[1]), 30);
  return Math.min(width * (tile[2] === 'data' ? 4096 : 32), 16 * MIB);
}

/** Per-server state (several test servers share one process): freshness of mutable answers, fetches under way. */
interface CacheState {
  /** repoId:path → when the sumdb last confirmed the cached answer (ms). */
  fresh: Map<string, number>;
  /** repoId:path → the fetch under way: N concurrent `go` commands make one upstream request. */
  flights: Map<string, Promise<SumdbAnswer>>;
}

const states = new WeakMap<Services, CacheState>();

function stateOf(s: Services): CacheState {
  let st = states.get(s);
  if (!st) states.set(s, (st = { fresh: new Map(), flights: new Map() }));
  return st;
}

function markFresh(st: CacheState, key: string): void {
  st.fresh.delete(key);
  if (st.fresh.size >= MAX_FRESH_ENTRIES) st.fresh.delete(st.fresh.keys().next().value!);
  st.fresh.set(key, Date.now());
}

function ttlMs(repo: RepositoryRecord): number {
  const proxy = repo.config.options?.[PROXY_OPTIONS_KEY] as { metadataTtlSeconds?: number } | undefined;
  return (proxy?.metadataTtlSeconds ?? DEFAULT_TTL_SECONDS) * 1000;
}

function isFresh(st: CacheState, repo: RepositoryRecord, key: string, a: Asset): boolean {
  const fetchedAt = (a.metadata.sumdb as { fetchedAt?: string } | undefined)?.fetchedAt ?? a.updatedAt;
  return Date.now() - (st.fresh.get(key) ?? Date.parse(fetchedAt)) < ttlMs(repo);
}

type Fetched =
  | { kind: 'ok'; body: Buffer; contentType: string; url: string }
  | { kind: 'missing'; status: 404 | 410; text: string }
  /** Could not answer (unreachable, 5xx, 429): a cached copy may stand in. */
  | { kind: 'down'; message: string };

/** GETs the answer, buffered (answers are small) up to its size cap. Throws for answers that are plainly wrong. */
async function fetchOp(t: SumdbOp): Promise<Fetched> {
  const url = t.upstream.replace(/\/+$/, '') + '/' + t.op;
  const cap = sizeCap(t.op);
  let res: Awaited<ReturnType<typeof fetch>>;
  try {
    dispatcher ??= new EnvHttpProxyAgent();
    res = await fetch(url, { signal: AbortSignal.timeout(UPSTREAM_TIMEOUT_MS), redirect: 'follow', dispatcher });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
    return { kind: 'down', message: `checksum database ${t.name} unreachable: ${cause}` };
  }
  if (res.status === 404 || res.status === 410) return { kind: 'missing', status: res.status, text: (await res.text()).slice(0, 1000) };
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    const message = `checksum database ${t.name} answered ${res.status} for ${t.op}`;
    if (res.status >= 500 || res.status === 429) return { kind: 'down', message };
    throw new GranaryError('UNAVAILABLE', message);
  }
  const tooBig = () => new GranaryError('UNAVAILABLE', `checksum database ${t.name} answered more than ${cap} bytes for ${t.op}; refused`);
  if (Number(res.headers.get('content-length') ?? 0) > cap) {
    await res.body.cancel();
    throw tooBig();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const c of res.body) {
      size += c.length;
      if (size > cap) throw tooBig();
      chunks.push(Buffer.from(c));
    }
  } catch (e) {
    await res.body.cancel().catch(() => {});
    if (e instanceof GranaryError) throw e;
    return { kind: 'down', message: `checksum database ${t.name} failed while sending ${t.op}: ${(e as Error).message}` };
  }
  return { kind: 'ok', body: Buffer.concat(chunks), contentType: res.headers.get('content-type') ?? 'application/octet-stream', url };
}

/** The answer to `t` for `repo`: from the cache when it may be, else fetched (single-flight) and cached. */
export async function readSumdb(s: Services, repo: RepositoryRecord, t: SumdbOp): Promise<SumdbAnswer> {
  const st = stateOf(s);
  const path = cachePath(t);
  const key = `${repo.id}:${path}`;
  const cached = await getAsset(s.meta.db, repo.id, path);
  if (cached && (isImmutable(t.op) || isFresh(st, repo, key, cached))) {
    countCacheHit(s, repo);
    return { kind: 'cached', asset: cached, stale: false };
  }
  const running = st.flights.get(key);
  if (running) return running;
  const p = refresh(s, st, repo, t, key, cached);
  st.flights.set(key, p);
  try {
    return await p;
  } finally {
    st.flights.delete(key);
  }
}

async function refresh(s: Services, st: CacheState, repo: RepositoryRecord, t: SumdbOp, key: string, cached: Asset | null): Promise<SumdbAnswer> {
  const got = await fetchOp(t);
  if (got.kind === 'missing') throw new GranaryError(got.status === 404 ? 'NOT_FOUND' : 'GONE', got.text || `not found: ${t.op}`);
  if (got.kind === 'down') {
    if (!cached) throw new GranaryError('UNAVAILABLE', got.message);
    countCacheHit(s, repo, true);
    s.log.warn({ repository: repo.name, sumdb: t.name, op: t.op, err: got.message }, 'checksum database failed: serving the cached answer past its TTL');
    return { kind: 'cached', asset: cached, stale: true };
  }
  const digest = `sha256:${createHash('sha256').update(got.body).digest('hex')}`;
  if (cached?.digest === digest) {
    markFresh(st, key); // unchanged (a quiet log): no new asset version, no event
    return { kind: 'cached', asset: cached, stale: false };
  }
  // A read-only replica does not write; it serves the primary's cache, which replication brings.
  if (s.replication?.readOnlyReason()) return { kind: 'live', body: got.body, contentType: got.contentType };
  const { asset } = await storeAsset(
    s,
    repo,
    {
      path: cachePath(t),
      data: Readable.from([got.body]),
      mediaType: got.contentType,
      metadata: { sumdb: { fetchedAt: new Date().toISOString(), url: got.url } },
      expectedDigest: digest,
      expectedSize: got.body.length,
      maxBytes: sizeCap(t.op),
    },
    null,
  );
  markFresh(st, key);
  return { kind: 'cached', asset, stale: false };
}
