/** /api/v1/repositories — list (what the caller may read), create, show, change, delete. */
import type { FastifyInstance } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Services } from '../server/services.ts';
import type { RepositoryRecord } from '../meta/repos.ts';
import { actorOf } from '../auth/types.ts';
import { errors, type RepositoryJson } from './schemas.ts';
import { redactProxySecrets } from '../repos/proxy/options.ts';

export function repoJson(r: RepositoryRecord): RepositoryJson {
  return {
    name: r.name,
    format: r.format,
    kind: r.kind,
    anonymousRead: r.anonymousRead,
    ...(r.config.upstream === undefined ? {} : { upstream: r.config.upstream }),
    ...(r.config.members === undefined ? {} : { members: r.config.members }),
    ...(r.config.writeMember === undefined ? {} : { writeMember: r.config.writeMember }),
    // Upstream secrets written inline are never shown back, to anyone (readers of an anonymous repository see this
    // JSON too); an update that sends the placeholder back keeps the stored secret (RepoService.update).
    ...(r.config.options === undefined ? {} : { options: redactProxySecrets(r.config.options) }),
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

const RepoBody = {
  anonymousRead: Type.Optional(Type.Boolean()),
  upstream: Type.Optional(Type.String()),
  members: Type.Optional(Type.Array(Type.String())),
  writeMember: Type.Optional(Type.String()),
  options: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
};
const NameParam = Type.Object({ name: Type.String() });
const tags = ['repositories'];

export function repositoryRoutes(s: Services) {
  return async (app: FastifyInstance) => {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();

    r.get(
      '/repositories',
      {
        schema: {
          tags,
          summary: 'Repositories the caller may read',
          querystring: Type.Object({ format: Type.Optional(Type.String()) }),
          response: { 200: Type.Object({ repositories: Type.Array(Type.Ref('Repository')) }), ...errors(401) },
        },
        config: { action: 'none' },
      },
      async (req) => {
        const all = await s.repos.list({ format: req.query.format });
        const visible: RepositoryRecord[] = [];
        for (const repo of all) if (await s.auth.can(req.principal, 'read', repo)) visible.push(repo);
        return { repositories: visible.map(repoJson) };
      },
    );

    r.post(
      '/repositories',
      {
        schema: {
          tags,
          summary: 'Create a repository (admin)',
          body: Type.Object(
            {
              name: Type.String(),
              format: Type.String(),
              kind: Type.Optional(Type.Union([Type.Literal('hosted'), Type.Literal('proxy'), Type.Literal('group')])),
              ...RepoBody,
            },
            { additionalProperties: false },
          ),
          response: { 201: Type.Ref('Repository'), ...errors(400, 401, 403, 409) },
        },
        config: { action: 'admin' },
      },
      async (req, reply) => {
        const repo = await s.repos.create(req.body, actorOf(req.principal));
        return reply.code(201).send(repoJson(repo));
      },
    );

    r.get(
      '/repositories/:name',
      {
        schema: { tags, summary: 'One repository', params: NameParam, response: { 200: Type.Ref('Repository'), ...errors(401, 403, 404) } },
        config: { action: 'read', repoParam: 'name' },
      },
      async (req) => repoJson(req.repository!),
    );

    r.patch(
      '/repositories/:name',
      {
        schema: {
          tags,
          summary: 'Change a repository (repository admin)',
          params: NameParam,
          body: Type.Object(RepoBody, { additionalProperties: false }),
          response: { 200: Type.Ref('Repository'), ...errors(400, 401, 403, 404) },
        },
        config: { action: 'admin', repoParam: 'name' },
      },
      async (req) => repoJson(await s.repos.update(req.params.name, req.body, actorOf(req.principal))),
    );

    r.delete(
      '/repositories/:name',
      {
        schema: { tags, summary: 'Delete a repository and its assets (admin)', params: NameParam, response: { 204: Type.Null(), ...errors(401, 403, 404, 409) } },
        config: { action: 'admin' },
      },
      async (req, reply) => {
        await s.repos.remove(req.params.name, actorOf(req.principal));
        return reply.code(204).send(null);
      },
    );
  };
}
