/**
 * One read for every repository kind: hosted → its asset; proxy → proxyRead; group → its members in order
 * (depth-first, nested groups included, skipping members the caller may not read — readOrder), first hit wins.
 * A member whose upstream fails is skipped when a later member has the object; the failure is raised only when
 * nobody had it, so one broken upstream does not hide content a hosted member holds.
 */
import type { Principal } from '../../auth/types.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { getAsset } from '../../meta/assets.ts';
import type { Services } from '../../server/services.ts';
import { readOrder } from '../content.ts';
import { proxyRead, type ProxyRequest, type ProxyResult } from './read.ts';

/** How to ask one (non-group) member for the object, or null to skip that member. */
export type ReadPlan = (member: RepositoryRecord) => ProxyRequest | null;

export async function readThrough(s: Services, repo: RepositoryRecord, p: Principal, plan: ReadPlan | ProxyRequest): Promise<ProxyResult> {
  const planOf: ReadPlan = typeof plan === 'function' ? plan : () => plan;
  let failure: unknown = null;
  for (const m of await readOrder(s, repo, p)) {
    const r = planOf(m);
    if (!r) continue;
    if (m.kind === 'proxy') {
      try {
        const got = await proxyRead(s, m, r);
        if (got.kind !== 'not-found') return got;
      } catch (e) {
        failure ??= e;
      }
      continue;
    }
    const a = await getAsset(s.meta.db, m.id, r.path);
    if (a) return { kind: 'cached', asset: a, repo: m, stale: false };
  }
  if (failure) throw failure;
  return { kind: 'not-found' };
}
