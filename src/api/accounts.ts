/**
 * /api/v1/users, /me, /tokens and /bindings. Users and bindings are for admins; anyone signed in manages
 * their own tokens (admins anyone's). A new token's secret is in the creation response only.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Services } from '../server/services.ts';
import { actorOf, type UserPrincipal } from '../auth/types.ts';
import { GranaryError } from '../server/errors.ts';
import { errors, RoleName } from './schemas.ts';

const NameParam = Type.Object({ name: Type.String() });

function signedIn(req: FastifyRequest): UserPrincipal {
  if (req.principal.kind !== 'user') throw new GranaryError('UNAUTHORIZED');
  return req.principal;
}

export function accountRoutes(s: Services) {
  return async (app: FastifyInstance) => {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    const a = s.accounts;

    r.get(
      '/me',
      {
        schema: {
          tags: ['users'],
          summary: 'Who the credentials belong to',
          response: {
            200: Type.Object({ user: Type.Union([Type.String(), Type.Null()]), admin: Type.Boolean(), via: Type.Union([Type.String(), Type.Null()]), readOnly: Type.Boolean() }),
          },
        },
        config: { action: 'none' },
      },
      async (req) => {
        const p = req.principal;
        return p.kind === 'user' ? { user: p.name, admin: p.admin, via: p.via, readOnly: p.readOnly } : { user: null, admin: false, via: null, readOnly: true };
      },
    );

    r.get(
      '/users',
      { schema: { tags: ['users'], summary: 'All users (admin)', response: { 200: Type.Object({ users: Type.Array(Type.Ref('User')) }), ...errors(401, 403) } }, config: { action: 'admin' } },
      async () => ({ users: await a.listUsers() }),
    );

    r.post(
      '/users',
      {
        schema: {
          tags: ['users'],
          summary: 'Create a user (admin)',
          body: Type.Object(
            { name: Type.String(), password: Type.Optional(Type.String()), admin: Type.Optional(Type.Boolean()) },
            { additionalProperties: false },
          ),
          response: { 201: Type.Ref('User'), ...errors(400, 401, 403, 409) },
        },
        config: { action: 'admin' },
      },
      async (req, reply) => reply.code(201).send(await a.addUser(req.body, actorOf(req.principal))),
    );

    r.get(
      '/users/:name',
      { schema: { tags: ['users'], summary: 'One user (admin)', params: NameParam, response: { 200: Type.Ref('User'), ...errors(401, 403, 404) } }, config: { action: 'admin' } },
      async (req) => a.getUser(req.params.name),
    );

    r.patch(
      '/users/:name',
      {
        schema: {
          tags: ['users'],
          summary: 'Change password, admin flag or disabled flag (admin; or your own password)',
          params: NameParam,
          body: Type.Object(
            { password: Type.Optional(Type.Union([Type.String(), Type.Null()])), admin: Type.Optional(Type.Boolean()), disabled: Type.Optional(Type.Boolean()) },
            { additionalProperties: false },
          ),
          response: { 200: Type.Ref('User'), ...errors(400, 401, 403, 404) },
        },
        config: { action: 'none' },
      },
      async (req) => {
        const p = signedIn(req);
        const self = p.name === req.params.name && req.body.admin === undefined && req.body.disabled === undefined;
        if (!p.admin && !(self && !p.readOnly)) throw new GranaryError('DENIED', 'only admins change other users');
        return a.updateUser(req.params.name, req.body, actorOf(p));
      },
    );

    r.delete(
      '/users/:name',
      { schema: { tags: ['users'], summary: 'Delete a user (admin)', params: NameParam, response: { 204: Type.Null(), ...errors(401, 403, 404) } }, config: { action: 'admin' } },
      async (req, reply) => {
        if (req.principal.kind === 'user' && req.principal.name === req.params.name) throw new GranaryError('CONFLICT', 'you cannot delete yourself');
        await a.removeUser(req.params.name, actorOf(req.principal));
        return reply.code(204).send(null);
      },
    );

    r.get(
      '/tokens',
      {
        schema: {
          tags: ['tokens'],
          summary: 'Your tokens (admins: ?user=NAME, or ?all=true)',
          querystring: Type.Object({ user: Type.Optional(Type.String()), all: Type.Optional(Type.Boolean()) }),
          response: { 200: Type.Object({ tokens: Type.Array(Type.Ref('Token')) }), ...errors(401, 403) },
        },
        config: { action: 'none' },
      },
      async (req) => {
        const p = signedIn(req);
        const user = req.query.all ? undefined : (req.query.user ?? p.name);
        if ((user !== p.name || req.query.all) && !p.admin) throw new GranaryError('DENIED', 'only admins list other users\' tokens');
        return { tokens: await a.listTokens(user) };
      },
    );

    r.post(
      '/tokens',
      {
        schema: {
          tags: ['tokens'],
          summary: 'Create an API token; the secret is shown in this response only',
          body: Type.Object(
            {
              name: Type.String({ minLength: 1, maxLength: 128 }),
              user: Type.Optional(Type.String()),
              readOnly: Type.Optional(Type.Boolean()),
              expiresInDays: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
            },
            { additionalProperties: false },
          ),
          response: { 201: Type.Object({ token: Type.String(), info: Type.Ref('Token') }), ...errors(400, 401, 403, 404) },
        },
        config: { action: 'none' },
      },
      async (req, reply) => {
        const p = signedIn(req);
        const user = req.body.user ?? p.name;
        if (user !== p.name && !p.admin) throw new GranaryError('DENIED', 'only admins create tokens for other users');
        // A read-only token cannot mint a token with more power than itself.
        if (p.readOnly && !req.body.readOnly) throw new GranaryError('DENIED', 'a read-only token can only create read-only tokens');
        const t = await a.createToken({ ...req.body, user }, actorOf(p));
        return reply.code(201).send({ token: t.token, info: { ...t.info, user } });
      },
    );

    r.delete(
      '/tokens/:id',
      {
        schema: { tags: ['tokens'], summary: 'Revoke a token', params: Type.Object({ id: Type.String() }), response: { 204: Type.Null(), ...errors(401, 403, 404) } },
        config: { action: 'none' },
      },
      async (req, reply) => {
        const p = signedIn(req);
        const t = await a.getToken(req.params.id);
        if (!t || (t.userId !== p.id && !p.admin)) throw new GranaryError('NOT_FOUND', `token ${req.params.id} not found`);
        if (p.readOnly) throw new GranaryError('DENIED', 'a read-only token cannot revoke tokens');
        await a.revokeToken(req.params.id, actorOf(p));
        return reply.code(204).send(null);
      },
    );

    r.get(
      '/bindings',
      {
        schema: {
          tags: ['bindings'],
          summary: 'Role bindings (admin), filtered by user and/or repository',
          querystring: Type.Object({ user: Type.Optional(Type.String()), repository: Type.Optional(Type.String()) }),
          response: { 200: Type.Object({ bindings: Type.Array(Type.Ref('Binding')) }), ...errors(401, 403, 404) },
        },
        config: { action: 'admin' },
      },
      async (req) => ({ bindings: await a.listBindings(req.query) }),
    );

    r.put(
      '/bindings',
      {
        schema: {
          tags: ['bindings'],
          summary: 'Grant a user a role on a repository ("*" = all) (admin)',
          body: Type.Object({ user: Type.String(), repository: Type.String(), role: RoleName }, { additionalProperties: false }),
          response: { 204: Type.Null(), ...errors(400, 401, 403, 404) },
        },
        config: { action: 'admin' },
      },
      async (req, reply) => {
        await a.grant(req.body, actorOf(req.principal));
        return reply.code(204).send(null);
      },
    );

    r.delete(
      '/bindings/:user/:repository',
      {
        schema: {
          tags: ['bindings'],
          summary: 'Remove a user\'s role on a repository (admin)',
          params: Type.Object({ user: Type.String(), repository: Type.String() }),
          response: { 204: Type.Null(), ...errors(401, 403, 404) },
        },
        config: { action: 'admin' },
      },
      async (req, reply) => {
        await a.revoke(req.params, actorOf(req.principal));
        return reply.code(204).send(null);
      },
    );
  };
}
