/**
 * Scheduled push: one reconciliation pass of a push rule over the current local state rather than the event log.
 * Every local tag of the rule's repository matching its globs is looked up on the remote (a manifest HEAD); where the
 * remote digest differs or is missing, the image is copied as an event would copy it (push.ts: children, blobs,
 * manifest bytes, tag, referrers — digests preserved). This catches a remote that lost data, and images pushed before
 * the rule existed or while it was not running.
 */
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { listScopes, listTags } from '../../meta/tags.ts';
import { MANIFEST_MEDIA_TYPES } from '../../formats/oci/media-types.ts';
import type { RegistryClient } from './registry-client.ts';
import { pushTag } from './push.ts';

const ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');
const PAGE = 500;

export interface ReconcileContext {
  s: Services;
  repo: RepositoryRecord;
  remote: RegistryClient;
  remoteName: (image: string) => string;
  images: (image: string) => boolean;
  tags: (tag: string) => boolean;
  /** Checked between tags: a stopping worker does not finish the pass. */
  stopped: () => boolean;
  /** Called after each copy, so a pass that fails half-way still counts what it did. */
  onCopied: (image: string, tag: string, digest: string) => void;
}

/** One pass; returns how many tags matched and how many were copied. Throws on the first failed lookup or copy. */
export async function reconcile(c: ReconcileContext): Promise<{ tags: number; copied: number }> {
  let tags = 0;
  let copied = 0;
  for (let last: string | undefined; ; ) {
    const scopes = await listScopes(c.s.meta.db, c.repo.id, { last, limit: PAGE });
    for (const image of scopes.filter((i) => c.images(i))) {
      const name = c.remoteName(image);
      // Shared by the image's tags: an index's children or a referrer common to two tags are sent once per pass.
      const done = new Set<string>();
      for (let lastTag: string | undefined; ; ) {
        const page = await listTags(c.s.meta.db, c.repo.id, image, { last: lastTag, limit: PAGE });
        for (const t of page.filter((x) => c.tags(x.name))) {
          if (c.stopped()) return { tags, copied };
          tags++;
          if ((await c.remote.manifestDigest(name, t.name, ACCEPT)) === t.target) continue;
          if (await pushTag({ s: c.s, repo: c.repo, image, remote: c.remote, remoteName: name, done, blobsPushed: 0 }, t.name, t.target)) {
            copied++;
            c.onCopied(image, t.name, t.target);
          }
        }
        if (page.length < PAGE) break;
        lastTag = page[page.length - 1].name;
      }
    }
    if (scopes.length < PAGE) break;
    last = scopes[scopes.length - 1];
  }
  return { tags, copied };
}
