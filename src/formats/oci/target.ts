/**
 * Which Granary repository and image an OCI request addresses.
 *
 * A client-facing OCI name is `<repo>/<image>`: the first segment picks a Granary repository of format `oci`
 * when one of that name exists and something follows it. Otherwise, when `oci.defaultRepository` is set, the
 * whole name is an image of that repository (so `localhost:8080/alpine` works). Without a default repository
 * the first segment is taken as the repository anyway, and the auth hook answers "unknown" for it.
 *
 * The result is computed once per request, by the route's `config.repo` function (which the auth hook calls
 * before any handler), and kept on `req.oci` for the handler.
 */
import type { FastifyRequest } from 'fastify';
import type { Services } from '../../server/services.ts';
import { OciError } from './errors.ts';
import { splitV2Path, type V2Kind } from './names.ts';
import { mirrorFor, mirrorNamespace } from './mirror.ts';

export interface OciTarget {
  /** The name as the client spells it: used in Location and Link headers and in token scopes. */
  fullName: string;
  /** The Granary repository holding the image. */
  repo: string;
  /** The image name inside that repository ('' when the path names a repository and nothing else). */
  image: string;
  /** The endpoint (manifests, blobs, blobs/uploads, tags/list, referrers). */
  kind: V2Kind;
  /** Reference, digest or upload id after the endpoint keyword; unvalidated. */
  rest: string;
  /** containerd mirror mode: the `?ns=` registry host that picked the (proxy) repository. */
  mirror?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    oci: OciTarget | null;
  }
}

export const OCI_FORMAT = 'oci';

/** Splits a client-facing name into Granary repository and image (one lookup when a default is configured). */
export async function resolveName(s: Services, fullName: string): Promise<{ repo: string; image: string }> {
  const slash = fullName.indexOf('/');
  const first = slash < 0 ? fullName : fullName.slice(0, slash);
  const remainder = slash < 0 ? '' : fullName.slice(slash + 1);
  const fallback = s.config.oci.defaultRepository;
  if (!fallback) return { repo: first, image: remainder };
  if (remainder !== '') {
    const r = await s.repos.get(first);
    if (r && r.format === OCI_FORMAT) return { repo: first, image: remainder };
  }
  return { repo: fallback, image: fullName };
}

/**
 * Parses the request path (raw, still percent-encoded: splitV2Path decodes it once) and resolves the name.
 * Throws NAME_INVALID for a bad name and a 404 for a path that is no endpoint of the spec.
 */
export async function targetOf(s: Services, req: FastifyRequest): Promise<OciTarget> {
  if (req.oci) return req.oci;
  const path = req.url.startsWith('/v2/') ? req.url.slice(4) : req.url;
  const split = splitV2Path(path);
  if (split === null) throw new OciError('UNSUPPORTED', `no OCI endpoint at ${req.url.split('?')[0]}`, undefined, 404);
  const ns = mirrorNamespace(req.url);
  const mirror = ns ? await mirrorFor(s, ns) : null;
  // containerd mirror mode: `?ns=<registry host>` picks the proxy for that host; the whole name is its image.
  const { repo, image } = mirror ? { repo: mirror, image: split.name } : await resolveName(s, split.name);
  req.oci = { fullName: split.name, repo, image, kind: split.kind, rest: split.rest, ...(mirror ? { mirror: ns! } : {}) };
  return req.oci;
}
