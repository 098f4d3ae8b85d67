/**
 * What every OCI handler receives: the services, the resolved target (repository + image), the repository
 * record the auth hook already checked, and the repository's OCI options (schema and defaults here).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import type { OciTarget } from './target.ts';
import { MANIFEST_MAX_BYTES } from './manifest.ts';

export const OciOptionsSchema = Type.Object(
  {
    immutableTags: Type.Boolean({ default: false, description: 'Refuse to move or delete an existing tag.' }),
    allowDelete: Type.Boolean({ default: true, description: 'Allow DELETE of manifests, tags and blobs (else 405 UNSUPPORTED).' }),
    maxManifestBytes: Type.Integer({
      default: MANIFEST_MAX_BYTES,
      minimum: 1024,
      maximum: 64 * 1024 * 1024,
      description: 'Largest manifest accepted (the spec asks for at least 4 MiB); bigger ones get 413.',
    }),
  },
  { additionalProperties: false },
);

export interface OciOptions {
  immutableTags: boolean;
  allowDelete: boolean;
  maxManifestBytes: number;
}

const DEFAULTS: OciOptions = { immutableTags: false, allowDelete: true, maxManifestBytes: MANIFEST_MAX_BYTES };

/** The repository's options with defaults filled in (records written before an option existed lack it). */
export function optionsOf(repo: RepositoryRecord): OciOptions {
  const o = repo.config.options as Partial<OciOptions> | undefined;
  return o ? { ...DEFAULTS, ...o } : DEFAULTS;
}

export interface OciContext {
  s: Services;
  t: OciTarget;
  repo: RepositoryRecord;
  opts: OciOptions;
  /** For the event log. */
  actor: string | null;
}

export type OciHandler = (c: OciContext, req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>;

/** `Content-Length` as a number, or undefined when absent or unusable. */
export function contentLength(req: FastifyRequest): number | undefined {
  const h = req.headers['content-length'];
  if (h === undefined) return undefined;
  const n = Number(h);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** Whether the request carries a body at all (a length above 0, or chunked transfer encoding). */
export function hasBody(req: FastifyRequest): boolean {
  const n = contentLength(req);
  return n !== undefined ? n > 0 : req.headers['transfer-encoding'] !== undefined;
}

/** First value of a query parameter (repeated → the first, as Go's Query().Get). */
export function queryParam(req: FastifyRequest, key: string): string | undefined {
  const v = (req.query as Record<string, unknown>)[key];
  const x = Array.isArray(v) ? v[0] : v;
  return typeof x === 'string' ? x : undefined;
}
