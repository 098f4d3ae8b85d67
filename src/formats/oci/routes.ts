/**
 * The whole OCI Distribution API in one table (distribution-spec v1.1,
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#endpoints).
 *
 * Names have any number of segments, so Fastify cannot route on them: one wildcard route per method takes
 * everything under /v2/, `splitV2Path` finds the endpoint from the path's end, and TABLE picks the handler.
 * Each wildcard route declares its action and a `repo` function: the auth hook resolves the repository
 * (target.ts) and checks the action before any handler runs.
 *
 * Actions: GET/HEAD read; POST/PUT/PATCH write; DELETE `delete` on manifests and blobs, `write` on an upload
 * (cancelling one's own upload is part of pushing); the delete handlers check `delete` on the write target too
 * (a group's member). Reading an upload's status requires write (checked by its handler). A registry JWT is checked again once the image is known:
 * it must grant that image what the request does to it (`imageAction`: pull, push or delete).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../server/services.ts';
import { actorOf } from '../../auth/types.ts';
import { optionsOf, type OciHandler } from './context.ts';
import { OciError } from './errors.ts';
import type { V2Kind } from './names.ts';
import { deleteBlob, getBlob } from './blobs.ts';
import { deleteManifestHandler, getManifestHandler, putManifestHandler } from './manifests.ts';
import { cancelUpload, finishUpload, patchUpload, startUpload, uploadStatus } from './uploads.ts';
import { catalog, listReferrersHandler, listTagsHandler, versionCheck } from './discovery.ts';
import { OCI_FORMAT, targetOf } from './target.ts';
import { imageAction } from './challenge.ts';
import { writeTarget } from '../../repos/content.ts';

type Method = 'GET' | 'HEAD' | 'PUT' | 'PATCH' | 'POST' | 'DELETE';

// prettier-ignore
const TABLE: Record<Method, Partial<Record<V2Kind, OciHandler>>> = {
  GET: {
    'manifests':     getManifestHandler,     // end-3   GET    /v2/<name>/manifests/<reference>
    'blobs':         getBlob,                // end-2   GET    /v2/<name>/blobs/<digest>        (Range)
    'blobs/uploads': uploadStatus,           // end-13  GET    /v2/<name>/blobs/uploads/<id>    → 204 Range
    'tags/list':     listTagsHandler,        // end-8   GET    /v2/<name>/tags/list?n=&last=
    'referrers':     listReferrersHandler,   // end-12a/12b GET    /v2/<name>/referrers/<digest>?artifactType=
  },
  HEAD: {
    'manifests':     getManifestHandler,     // end-3   HEAD   /v2/<name>/manifests/<reference>
    'blobs':         getBlob,                // end-2   HEAD   /v2/<name>/blobs/<digest>
  },
  POST: {
    'blobs/uploads': startUpload,            // end-4a/4b/11  POST /v2/<name>/blobs/uploads/[?digest=|?mount=&from=]
  },
  PATCH: {
    'blobs/uploads': patchUpload,            // end-5   PATCH  /v2/<name>/blobs/uploads/<id>    (Content-Range)
  },
  PUT: {
    'manifests':     putManifestHandler,     // end-7   PUT    /v2/<name>/manifests/<reference>
    'blobs/uploads': finishUpload,           // end-6   PUT    /v2/<name>/blobs/uploads/<id>?digest=
  },
  DELETE: {
    'manifests':     deleteManifestHandler,  // end-9   DELETE /v2/<name>/manifests/<reference>
    'blobs':         deleteBlob,             // end-10  DELETE /v2/<name>/blobs/<digest>
    'blobs/uploads': cancelUpload,           // (Distribution) DELETE /v2/<name>/blobs/uploads/<id>
  },
};

const ACTION: Record<Exclude<Method, 'DELETE'>, 'read' | 'write'> = { GET: 'read', HEAD: 'read', POST: 'write', PUT: 'write', PATCH: 'write' };

export async function registerRoutes(app: FastifyInstance, s: Services): Promise<void> {
  const repo = async (req: FastifyRequest) => (await targetOf(s, req)).repo;
  // DELETE of a manifest or blob needs `delete` (all a registry token for `repository:x:delete` grants, which is
  // what crane asks for); cancelling one's own upload is part of pushing.
  const deleteAction = async (req: FastifyRequest) => ((await targetOf(s, req)).kind === 'blobs/uploads' ? ('write' as const) : ('delete' as const));

  // end-1: version check and login trigger. Not in v1.1: the catalog (Distribution's extension), kept for tools.
  app.get('/', { config: { action: 'none', format: OCI_FORMAT } }, (req, reply) => versionCheck(s, req, reply));
  app.head('/', { config: { action: 'none', format: OCI_FORMAT } }, (req, reply) => versionCheck(s, req, reply));
  app.get('/_catalog', { config: { action: 'none', format: OCI_FORMAT } }, (req, reply) => catalog(s, req, reply));

  for (const method of Object.keys(TABLE) as Method[]) {
    const handlers = TABLE[method];
    app.route({
      method,
      url: '/*',
      config: { action: method === 'DELETE' ? deleteAction : ACTION[method], repo, format: OCI_FORMAT },
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        const t = req.oci ?? (await targetOf(s, req));
        const h = handlers[t.kind];
        if (!h) throw new OciError('UNSUPPORTED', `${method} is not part of the API on /${t.kind}`, { method, endpoint: t.kind }, 405);
        if (t.image === '') {
          throw new OciError('NAME_INVALID', `invalid repository name: ${t.fullName} names a Granary repository; use ${t.fullName}/<image>`, { name: t.fullName });
        }
        // A registry JWT grants per image (token-grants.ts); the auth hook, shared by every format, checked only
        // the repository. Other credentials carry no such limit: their roles are per repository.
        const p = req.principal;
        if (p.kind === 'user' && p.restrict) await s.auth.require(p, imageAction(method, t.kind), req.repository!, t.image);
        // Writes to a group go to its writeMember (write permission on it checked too); proxies are read-only.
        const writes = (method !== 'GET' && method !== 'HEAD') || t.kind === 'blobs/uploads';
        const r = writes && req.repository!.kind !== 'hosted' ? await writeTarget(s, req.repository!, req.principal) : req.repository!;
        return h({ s, t, repo: r, opts: optionsOf(r), actor: actorOf(req.principal) }, req, reply);
      },
    });
  }
}
