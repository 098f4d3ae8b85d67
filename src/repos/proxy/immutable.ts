/**
 * Immutable objects (addressed by digest or version) that are not cached yet: the same bytes cached under another
 * path are bound after a HEAD, else one upstream GET per (repository, path) — a flight — is spooled, streamed to
 * every waiting client, verified and stored (adopted by a store with local files, copied into S3).
 */
import { rm } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { getAsset, listAssets } from '../../meta/assets.ts';
import { storeAsset } from '../content.ts';
import type { ProxyRuntime } from './runtime.ts';
import { UpstreamError, type UpstreamResponse } from './upstream.ts';
import type { Flight, SpoolResult } from './flight.ts';
import { parseDigest } from '../../blobs/digest.ts';
import { DigestMismatchError, SizeMismatchError } from '../../blobs/errors.ts';
import { bindCached, markMissing, proxyMeta, sizeOf, upstreamUnavailable, upstreamUrl, type ProxyRequest, type ProxyResult } from './request.ts';

/**
 * The same bytes cached under another path of this repository — a base layer shared by two images of one
 * mirror — are bound at `path` too once a HEAD confirms the upstream has them there: no second download (and a
 * HEAD does not count toward Docker Hub's pull limit). When the upstream cannot answer, they are bound anyway:
 * the digest vouches for the bytes, and a mirror keeps serving while its upstream is down. Only within one
 * repository, so nobody reads through a proxy what another repository holds.
 */
export async function reuseSameDigest(s: Services, rt: ProxyRuntime, repo: RepositoryRecord, r: ProxyRequest): Promise<ProxyResult | null> {
  const [twin] = await listAssets(s.meta.db, { repoIds: [repo.id], digest: r.expectedDigest, limit: 1 });
  if (twin === undefined || (await s.blobs.stat(twin.digest)) === null) return null;
  const url = r.url ?? upstreamUrl(repo, r.path);
  let confirmed: UpstreamResponse | null = null;
  try {
    confirmed = await rt.client(repo).request(url, { method: 'HEAD', headers: r.headers, scope: r.scope });
  } catch (e) {
    if (!upstreamUnavailable(e)) throw e;
    s.log.warn({ repository: repo.name, path: r.path, err: (e as Error).message }, 'upstream failed: binding the copy cached under another path');
  }
  if (confirmed !== null) {
    if (confirmed.status === 404 || confirmed.status === 410) {
      markMissing(s, repo, r.path);
      return { kind: 'not-found' };
    }
    const size = sizeOf(confirmed.headers);
    if (confirmed.status !== 200 || (size !== undefined && size !== twin.size)) return null; // let a GET sort it out
  }
  const metadata = { ...r.metadata, proxy: { fetchedAt: new Date().toISOString(), url, sameAs: twin.path } };
  const mediaType = confirmed?.headers['content-type'] ?? twin.mediaType ?? r.mediaType;
  const asset = await bindCached(s, repo, r.path, { digest: twin.digest, size: twin.size, mediaType, metadata });
  return { kind: 'cached', asset, repo, stale: false };
}

interface FlightInfo {
  found: boolean;
  size?: number;
  mediaType?: string;
  digest?: string;
}

const infos = new WeakMap<Flight, Promise<FlightInfo>>();

export async function fetchImmutable(s: Services, rt: ProxyRuntime, repo: RepositoryRecord, r: ProxyRequest, key: string): Promise<ProxyResult> {
  let flight = rt.flights.get(key);
  if (!flight) {
    flight = rt.flights.start(key);
    infos.set(flight, runFlight(s, rt, repo, r, key, flight));
  }
  const info = await infos.get(flight)!;
  if (!info.found) return { kind: 'not-found' };
  if (r.wait) {
    await flight.over;
    if (flight.error) throw flight.error;
    const asset = await getAsset(s.meta.db, repo.id, r.path);
    if (!asset) throw new UpstreamError(`the cached copy of ${r.path} vanished`, null);
    return { kind: 'cached', asset, repo, stale: false };
  }
  if (flight.error) throw flight.error;
  const size = info.size;
  return {
    kind: 'live',
    repo,
    body: flight.reader(true),
    size,
    digest: info.digest,
    mediaType: info.mediaType,
    ...(size === undefined ? {} : { copyTo: (dest: Writable) => flight.copyTo(dest, size) }),
  };
}

/** Starts the upstream GET; resolves once headers are in (or not found), then keeps spooling and storing. */
async function runFlight(s: Services, rt: ProxyRuntime, repo: RepositoryRecord, r: ProxyRequest, key: string, flight: Flight): Promise<FlightInfo> {
  let res: UpstreamResponse;
  try {
    res = await rt.client(repo).request(r.url ?? upstreamUrl(repo, r.path), { headers: r.headers, scope: r.scope });
  } catch (e) {
    flight.fail(e as Error);
    throw e;
  }
  if (res.status === 404 || res.status === 410) {
    markMissing(s, repo, r.path);
    flight.fail(new Error('not found'));
    return { found: false };
  }
  if (res.status !== 200 || !res.body) {
    const e = new UpstreamError(`upstream ${new URL(res.url).origin} answered HTTP ${res.status} for ${new URL(res.url).pathname}`, res.status);
    flight.fail(e);
    throw e;
  }
  const size = sizeOf(res.headers);
  const mediaType = res.headers['content-type'] ?? r.mediaType;
  const body = res.body;
  const onBytes = (n: number) => rt.metrics.bytesFetched.inc({ repository: repo.name }, n);
  const maxBytes = s.config.limits.uploadBytes;
  // The cache is filled on its own schedule: a client going away does not stop it (Distribution does the same).
  let spooled: Promise<SpoolResult>;
  let stored: Promise<unknown>;
  const asset = { mediaType: mediaType ?? null, metadata: proxyMeta(res, r.metadata) };
  if (s.blobs.adoptFile !== undefined) {
    // A store with local files takes the spool itself (hashed while written, fsynced): one write to disk instead
    // of two, and no second read of the bytes.
    const algorithm = r.expectedDigest === undefined ? 'sha256' : parseDigest(r.expectedDigest).algorithm;
    spooled = flight.spool(body, { onBytes, hash: algorithm, maxBytes });
    stored = spooled.then(async (sp) => {
      checkSpooled(sp, r.expectedDigest, size);
      const name = await flight.handOver();
      const blob = await s.blobs.adoptFile!(name, { digest: sp.digest!, size: sp.size }).finally(() => rm(name, { force: true }));
      return bindCached(s, repo, r.path, { ...blob, ...asset });
    });
  } else {
    spooled = flight.spool(body, { onBytes });
    stored = storeAsset(
      s,
      repo,
      { path: r.path, data: flight.reader(false), ...asset, expectedDigest: r.expectedDigest, expectedSize: size, maxBytes },
      null,
    );
  }
  void Promise.all([spooled, stored]).then(
    () => {
      rt.negative.delete(key);
      flight.commit();
    },
    (e: Error) => {
      body.destroy();
      void spooled.catch(() => {});
      rt.metrics.upstreamErrors.inc({ repository: repo.name });
      s.log.warn({ repository: repo.name, path: r.path, err: e.message }, 'proxy download failed; nothing was cached');
      flight.fail(e instanceof UpstreamError ? e : new UpstreamError(`download of ${r.path} from the upstream failed: ${e.message}`, null, e));
    },
  );
  return { found: true, size, mediaType, digest: r.expectedDigest };
}

/** The spooled bytes against what the request and the upstream promised (as `BlobStore.put` checks them). */
function checkSpooled(sp: SpoolResult, expectedDigest: string | undefined, expectedSize: number | undefined): void {
  if (expectedSize !== undefined && sp.size !== expectedSize) throw new SizeMismatchError(expectedSize, sp.size);
  if (expectedDigest !== undefined && sp.digest !== expectedDigest) throw new DigestMismatchError(expectedDigest, sp.digest!);
}

