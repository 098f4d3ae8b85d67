/**
 * The format plug-in contract (version 1). A format speaks one protocol: it registers its routes in its own
 * encapsulated Fastify scope and asks the core for repositories, assets and blobs — it never touches SQL or
 * disks directly, and never checks permissions itself (each route declares its action; the auth hook decides).
 */
import type { FastifyInstance } from 'fastify';
import type { TSchema } from '@sinclair/typebox';
import type { RepoKind } from '../meta/tables.ts';
import type { Services } from '../server/services.ts';

export const FORMAT_CONTRACT_VERSION = 1;

export interface FormatPlugin {
  /** Lower-case name, used in URLs (`/<name>/<repo>/…`) and in repository records. */
  name: string;
  contract: typeof FORMAT_CONTRACT_VERSION;
  /** Repository kinds this format supports (empty for a plug-in that serves another format's repositories). */
  kinds: readonly RepoKind[];
  /**
   * Set when the plug-in speaks a protocol over repositories of another format instead of defining its own —
   * e.g. the memflow-registry and eBPF-registry APIs over `generic` repositories. Such a plug-in cannot be
   * named as a repository's format; its routes declare `config.format` = this value.
   */
  repositoryFormat?: string;
  /** URL prefix of its routes; default `/<name>`. OCI uses `/v2`. */
  prefix?: string;
  /** JSON schema of `options` in a repository of this format (validated at create/update). */
  optionsSchema?: TSchema;
  /** Registers the routes, inside a scope already prefixed and encapsulated. */
  register(app: FastifyInstance, services: Services): Promise<void>;
}
