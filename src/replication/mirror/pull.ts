/**
 * Pull mirroring: on a schedule, copies the matching tags of named images from a remote registry into a local
 * OCI repository — blobs streamed into the blob store and verified by digest, then the manifest bytes exactly as
 * the remote serves them (so digests are preserved), then the tag, then the manifest's referrers (the referrers
 * API, or the referrers tag schema). A tag already pointing at the remote digest costs one manifest GET.
 */
import { createHash } from 'node:crypto';
import picomatch from 'picomatch';
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { withTx } from '../../meta/db.ts';
import { getTag } from '../../meta/tags.ts';
import { getManifest, linkBlob, putManifest } from '../../formats/oci/store.ts';
import { MANIFEST_MEDIA_TYPES } from '../../formats/oci/media-types.ts';
import type { Descriptor } from '../../formats/oci/descriptor.ts';
import type { RegistryClient } from './registry-client.ts';
import type { ManifestJson } from './push.ts';

const ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');
const INDEX = /manifest\.list|image\.index/;

export interface PullContext {
  s: Services;
  repo: RepositoryRecord;
  image: string;
  remote: RegistryClient;
  remoteName: string;
  actor: string;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Copies manifest `ref` (tag or digest) and everything it needs; returns its digest, or null when the remote lacks it. */
async function pullManifest(c: PullContext, ref: string, opts: { tag?: string; referrer?: { subject: string; descriptor: Descriptor } } = {}): Promise<string | null> {
  const bytes = await c.remote.getManifest(c.remoteName, ref, ACCEPT);
  if (!bytes) return null;
  const digest = sha256(bytes);
  if (ref.startsWith('sha256:') && ref !== digest) throw new Error(`${c.remote.base}/${c.remoteName} served manifest ${ref} with digest ${digest}`);
  const json = JSON.parse(bytes.toString('utf8')) as ManifestJson;
  const mediaType = json.mediaType ?? (json.manifests ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json');
  if (!(await getManifest(c.s.meta.db, c.repo, c.image, digest))) {
    if (INDEX.test(mediaType)) {
      for (const m of json.manifests ?? []) await pullManifest(c, m.digest);
    } else {
      const blobs = [json.config, ...(json.layers ?? []).filter((l) => !l.urls?.length)].filter((b): b is { digest: string; size: number } => !!b);
      for (const b of blobs) {
        if (!(await c.s.blobs.stat(b.digest))) {
          await c.s.blobs.put(await c.remote.getBlob(c.remoteName, b.digest), { expectedDigest: b.digest, expectedSize: b.size });
        }
        await withTx(c.s.meta.db, (tx) => linkBlob(tx, c.repo, c.image, b, c.actor));
      }
    }
  }
  await putManifest(c.s, c.repo, c.image, { digest, bytes, mediaType, ...(opts.tag ? { tag: opts.tag } : {}), ...(opts.referrer ? { referrer: opts.referrer } : {}) }, c.actor);
  await pullReferrers(c, digest);
  return digest;
}

/** Referrers of `subject` the remote has and we lack; returns how many were copied. */
async function pullReferrers(c: PullContext, subject: string): Promise<number> {
  let n = 0;
  for (const d of await c.remote.referrers(c.remoteName, subject)) {
    if (await getManifest(c.s.meta.db, c.repo, c.image, d.digest)) continue;
    await pullManifest(c, d.digest, { referrer: { subject, descriptor: d as Descriptor } });
    n++;
  }
  return n;
}

/** One scheduled pass over an image: every remote tag matching `tags` that differs locally is copied. */
export async function pullImage(c: PullContext, tags: string[]): Promise<number> {
  const match = picomatch(tags.length ? tags : ['**']);
  let copied = 0;
  for (const tag of (await c.remote.listTags(c.remoteName)).filter((t) => match(t))) {
    const local = await getTag(c.s.meta.db, c.repo.id, c.image, tag);
    const bytes = local ? await c.remote.getManifest(c.remoteName, tag, ACCEPT) : null;
    // An unchanged tag may still have gained referrers (a signature added after the image) since the last pass.
    if (local && bytes && sha256(bytes) === local.target) copied += await pullReferrers(c, local.target);
    else if (await pullManifest(c, tag, { tag })) copied++;
  }
  return copied;
}
