/**
 * /api/v1 asset listing and search (by repository, path prefix, digest and metadata) and the event feed.
 * Metadata filters are query keys `meta.<key>=<value>`. Pages are keyset-paginated: pass `after` = `next`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Services } from '../server/services.ts';
import type { RepositoryRecord } from '../meta/repos.ts';
import { listAssets, type Asset } from '../meta/assets.ts';
import { listEvents } from '../meta/events.ts';
import { GranaryError } from '../server/errors.ts';
import { errors } from './schemas.ts';

const AssetQuery = Type.Object(
  {
    prefix: Type.Optional(Type.String()),
    digest: Type.Optional(Type.String()),
    after: Type.Optional(Type.Integer({ minimum: 0 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    repository: Type.Optional(Type.String()),
  },
  { additionalProperties: Type.String() },
);

const AssetPage = Type.Object({ assets: Type.Array(Type.Ref('Asset')), next: Type.Union([Type.Integer(), Type.Null()]) });

function metadataFilter(query: Record<string, unknown>): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(query)) {
    if (!k.startsWith('meta.')) continue;
    const key = k.slice(5);
    if (!key) throw new GranaryError('VALIDATION', 'metadata filter needs a key: meta.<key>=<value>');
    out[key] = String(v);
  }
  return Object.keys(out).length ? out : undefined;
}

async function readable(s: Services, req: FastifyRequest): Promise<RepositoryRecord[]> {
  const out: RepositoryRecord[] = [];
  for (const r of await s.repos.list()) if (await s.auth.can(req.principal, 'read', r)) out.push(r);
  return out;
}

export function contentRoutes(s: Services) {
  return async (app: FastifyInstance) => {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();

    const page = async (repos: RepositoryRecord[], q: Record<string, unknown> & { prefix?: string; digest?: string; after?: number; limit?: number }) => {
      const names = new Map(repos.map((x) => [x.id, x.name]));
      const limit = q.limit ?? 100;
      const assets: Asset[] = await listAssets(s.meta.db, {
        repoIds: repos.map((x) => x.id),
        prefix: q.prefix,
        digest: q.digest,
        afterId: q.after,
        metadata: metadataFilter(q),
        limit,
      });
      return {
        assets: assets.map((a) => ({
          repository: names.get(a.repoId)!,
          path: a.path,
          digest: a.digest,
          size: a.size,
          mediaType: a.mediaType,
          metadata: a.metadata,
          createdAt: a.createdAt,
          updatedAt: a.updatedAt,
        })),
        next: assets.length === limit ? assets[assets.length - 1].id : null,
      };
    };

    r.get(
      '/repositories/:name/assets',
      {
        schema: {
          tags: ['assets'],
          summary: 'Assets of a repository, by path prefix, digest or metadata (meta.<key>=<value>)',
          params: Type.Object({ name: Type.String() }),
          querystring: AssetQuery,
          response: { 200: AssetPage, ...errors(400, 401, 403, 404) },
        },
        config: { action: 'read', repoParam: 'name' },
      },
      async (req) => page([req.repository!], req.query),
    );

    r.get(
      '/assets',
      {
        schema: {
          tags: ['assets'],
          summary: 'Search assets across the repositories the caller may read',
          querystring: AssetQuery,
          response: { 200: AssetPage, ...errors(400, 401) },
        },
        config: { action: 'none' },
      },
      async (req) => {
        let repos = await readable(s, req);
        if (req.query.repository) repos = repos.filter((x) => x.name === req.query.repository);
        return page(repos, req.query);
      },
    );

    r.get(
      '/events',
      {
        schema: {
          tags: ['events'],
          summary: 'The change feed after sequence `since` (admins: everything; others: repositories they may read)',
          querystring: Type.Object({
            since: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
            repository: Type.Optional(Type.String()),
          }),
          response: { 200: Type.Object({ events: Type.Array(Type.Ref('Event')), next: Type.Integer() }), ...errors(401) },
        },
        config: { action: 'none' },
      },
      async (req) => {
        const p = req.principal;
        if (p.kind !== 'user') throw new GranaryError('UNAUTHORIZED');
        const repos = p.admin ? undefined : (await readable(s, req)).map((x) => x.name);
        const events = await listEvents(s.meta.db, { since: req.query.since, limit: req.query.limit, repo: req.query.repository, repos });
        return { events, next: events.length ? events[events.length - 1].seq : (req.query.since ?? 0) };
      },
    );
  };
}
