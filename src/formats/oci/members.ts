/**
 * OCI reads over any repository kind: a hosted repository answers from its store; a proxy asks its upstream
 * (proxy.ts); a group asks its members in order — readOrder: depth-first, each once, only members the caller may
 * read — the first that has the manifest or blob wins, and tag lists and referrers are merged without duplicates.
 * A member whose upstream fails is passed over when another has the answer; its error surfaces only otherwise.
 */
import type { FastifyRequest } from 'fastify';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { readOrder, type ProxyResult } from '../../repos/proxy/index.ts';
import type { OciContext } from './context.ts';
import type { Descriptor } from './descriptor.ts';
import type { Reference } from './names.ts';
import { proxyBlob, proxyManifest, proxyReferrers, proxyTags, type ProxiedManifest } from './proxy.ts';
import { findBlob, imageExists, imageTags, referrers, resolveManifest } from './store.ts';

async function membersOf(c: OciContext, req: FastifyRequest): Promise<RepositoryRecord[]> {
  return c.repo.kind === 'hosted' ? [c.repo] : readOrder(c.s, c.repo, req.principal);
}

/** Runs `f` on each member until one answers non-null; rethrows the first failure if none did. */
async function first<T>(members: RepositoryRecord[], f: (m: RepositoryRecord) => Promise<T | null>): Promise<T | null> {
  let failure: unknown = null;
  for (const m of members) {
    try {
      const got = await f(m);
      if (got !== null) return got;
    } catch (e) {
      if (m.kind !== 'proxy') throw e;
      failure ??= e;
    }
  }
  if (failure) throw failure;
  return null;
}

export async function readManifest(c: OciContext, req: FastifyRequest, ref: Reference): Promise<ProxiedManifest | null> {
  return first(await membersOf(c, req), async (m) => {
    if (m.kind === 'proxy') return proxyManifest(c.s, m, c.t.image, ref);
    const found = await resolveManifest(c.s, m, c.t.image, ref);
    return found && { ...found, stale: false };
  });
}

export async function readBlob(c: OciContext, req: FastifyRequest, digest: string): Promise<ProxyResult> {
  const got = await first(await membersOf(c, req), async (m): Promise<ProxyResult | null> => {
    if (m.kind === 'proxy') {
      const r = await proxyBlob(c.s, m, c.t.image, digest, req.method === 'HEAD');
      return r.kind === 'not-found' ? null : r;
    }
    const a = await findBlob(c.s, m, c.t.image, digest);
    return a && { kind: 'cached', asset: a, repo: m, stale: false };
  });
  return got ?? { kind: 'not-found' };
}

/** Every tag of the image across the members, or null when no member knows the image at all. */
export async function readTags(c: OciContext, req: FastifyRequest): Promise<string[] | null> {
  const all = new Set<string>();
  let known = false;
  let failure: unknown = null;
  for (const m of await membersOf(c, req)) {
    if (m.kind === 'proxy') {
      try {
        const t = await proxyTags(c.s, m, c.t.image);
        if (t) {
          known = true;
          for (const x of t) all.add(x);
        }
      } catch (e) {
        failure ??= e;
      }
      continue;
    }
    const t = await imageTags(c.s, m, c.t.image);
    for (const x of t) all.add(x);
    if (t.length || (await imageExists(c.s, m, c.t.image))) known = true;
  }
  if (!known && failure) throw failure;
  return known ? [...all] : null;
}

export async function readReferrers(c: OciContext, req: FastifyRequest, subject: string): Promise<Descriptor[]> {
  const out: Descriptor[] = [];
  const seen = new Set<string>();
  for (const m of await membersOf(c, req)) {
    const list = m.kind === 'proxy' ? await proxyReferrers(c.s, m, c.t.image, subject) : await referrers(c.s, m, c.t.image, subject);
    for (const d of list) {
      if (seen.has(d.digest)) continue;
      seen.add(d.digest);
      out.push(d);
    }
  }
  return out;
}
