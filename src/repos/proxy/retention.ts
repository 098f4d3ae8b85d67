/**
 * Proxy retention: a proxy repository with `options.proxy.unusedDays` forgets cached objects nobody read for that
 * many days (Harbor's proxy-cache expiry, Artifactory's "keep unused artifacts", Nexus's "last downloaded").
 * Last read = accessed_at (access.ts), else when the object was stored. Removal goes through the ordinary meta
 * delete functions, so each removal appends its event and replicas follow; the bytes stay in the blob store until
 * `granary gc` finds nothing references them. Runs from the server's janitor (hourly), never on a read-only replica
 * (it follows its primary's deletes instead).
 *
 * Formats whose cached objects are more than one asset row name their own removal in FORMAT_SWEEPS (OCI: a
 * manifest goes with its tags, and blob links stay while a kept manifest needs them); others delete asset rows.
 */
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { listRepositories } from '../../meta/repos.ts';
import { deleteAsset, unusedAssets } from '../../meta/assets.ts';
import { withTx } from '../../meta/db.ts';
import { flushAccess } from './access.ts';
import { unusedDaysOf } from './options.ts';
import { sweepOci } from './retention-oci.ts';

/** The actor the removals' events name. */
export const RETENTION_ACTOR = 'retention';
const DAY_MS = 86_400_000;
const PAGE = 500;

export interface SweepResult {
  repository: string;
  removed: number;
}

/**
 * Removes the given unused paths of one repository; returns how many objects went. `deleteRows` is the
 * default removal (asset rows with their events, as RETENTION_ACTOR) for paths the format has nothing to add to.
 */
export type FormatSweep = (s: Services, repo: RepositoryRecord, paths: string[], deleteRows: (paths: string[]) => Promise<number>, actor: string) => Promise<number>;

const FORMAT_SWEEPS: Record<string, FormatSweep> = { oci: sweepOci };

/** Deletes asset rows one by one (each with its asset.deleted event). */
async function deleteAssets(s: Services, repo: RepositoryRecord, paths: string[]): Promise<number> {
  let n = 0;
  for (const path of paths) if (await withTx(s.meta.db, (tx) => deleteAsset(tx, repo, path, RETENTION_ACTOR))) n++;
  return n;
}

/** Every path of the repository not read or written since `before` (ISO time). */
async function unusedPaths(s: Services, repo: RepositoryRecord, before: string): Promise<string[]> {
  const out: string[] = [];
  let afterId = 0;
  for (;;) {
    const page = await unusedAssets(s.meta.db, repo.id, before, { afterId, limit: PAGE });
    out.push(...page.map((a) => a.path));
    if (page.length < PAGE) return out;
    afterId = page[page.length - 1].id;
  }
}

/** One proxy repository: removes what was not read for `unusedDays` days (as of `now`). */
export async function sweepRepository(s: Services, repo: RepositoryRecord, now = Date.now()): Promise<number> {
  const days = unusedDaysOf(repo);
  if (!days) return 0;
  const paths = await unusedPaths(s, repo, new Date(now - days * DAY_MS).toISOString());
  if (!paths.length) return 0;
  const deleteRows = (p: string[]) => deleteAssets(s, repo, p);
  const sweep = FORMAT_SWEEPS[repo.format];
  return sweep ? sweep(s, repo, paths, deleteRows, RETENTION_ACTOR) : deleteRows(paths);
}

/**
 * Every proxy repository with `unusedDays`: reads noted on this node are written first, so they count.
 * One repository failing does not stop the others (logged). Returns the repositories where something went.
 */
export async function sweepRetention(s: Services, now = Date.now()): Promise<SweepResult[]> {
  if (s.replication?.readOnlyReason()) return [];
  await flushAccess(s);
  const out: SweepResult[] = [];
  for (const repo of await listRepositories(s.meta.db)) {
    if (!unusedDaysOf(repo)) continue;
    try {
      const removed = await sweepRepository(s, repo, now);
      if (removed) {
        out.push({ repository: repo.name, removed });
        s.log.info({ repository: repo.name, removed, unusedDays: unusedDaysOf(repo) }, 'proxy retention: removed unused cached objects');
      }
    } catch (e) {
      s.log.warn({ repository: repo.name, err: (e as Error).message }, 'proxy retention sweep failed');
    }
  }
  return out;
}
