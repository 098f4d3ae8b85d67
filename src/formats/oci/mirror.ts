/**
 * containerd's mirror mode: a `hosts.toml` entry for a registry host sends `GET /v2/<name>/…?ns=<host>` to the
 * mirror, so one Granary can mirror many registries — each `?ns=` picks the OCI proxy repository whose `hosts`
 * (default: its upstream's host; `docker.io` too for Docker Hub) include that host.
 */
import type { Services } from '../../server/services.ts';
import { proxyOptionsOf } from '../../repos/proxy/index.ts';
import { OCI_FORMAT } from './target.ts';

/** The `ns` query parameter of a request URL, lower-cased, or null. */
export function mirrorNamespace(url: string): string | null {
  const q = url.indexOf('?');
  if (q < 0) return null;
  const ns = new URLSearchParams(url.slice(q + 1)).get('ns');
  return ns ? ns.toLowerCase() : null;
}

/** Host → proxy repository, reused for a few seconds (a changed or removed proxy shows up within that). */
const REFRESH_MS = 5_000;
const tables = new WeakMap<Services, { at: number; byHost: Map<string, string> }>();

export async function mirrorTable(s: Services, fresh = false): Promise<Map<string, string>> {
  const t = tables.get(s);
  if (t && !fresh && Date.now() - t.at < REFRESH_MS) return t.byHost;
  const byHost = new Map<string, string>();
  for (const r of await s.repos.list({ format: OCI_FORMAT })) {
    if (r.kind !== 'proxy') continue;
    try {
      for (const h of proxyOptionsOf(r).hosts) if (!byHost.has(h.toLowerCase())) byHost.set(h.toLowerCase(), r.name);
    } catch (e) {
      s.log.warn({ repository: r.name, err: (e as Error).message }, 'proxy repository misconfigured; not used as a mirror');
    }
  }
  tables.set(s, { at: Date.now(), byHost });
  return byHost;
}

/** The proxy for `ns`; a host not in the table rebuilds it first (a proxy created a moment ago must work). */
export async function mirrorFor(s: Services, ns: string): Promise<string | null> {
  return (await mirrorTable(s)).get(ns) ?? (await mirrorTable(s, true)).get(ns) ?? null;
}
