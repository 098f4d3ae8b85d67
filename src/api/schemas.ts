/** JSON schemas shared by the management API routes (they also make up /api/v1/openapi.json). */
import { Type, type Static } from '@sinclair/typebox';

export const ErrorBody = Type.Object(
  { error: Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Unknown()) }) },
  { $id: 'Error' },
);

export const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, Type.Ref('Error')]));

export const Repository = Type.Object(
  {
    name: Type.String(),
    format: Type.String(),
    kind: Type.Union([Type.Literal('hosted'), Type.Literal('proxy'), Type.Literal('group')]),
    anonymousRead: Type.Boolean(),
    upstream: Type.Optional(Type.String()),
    members: Type.Optional(Type.Array(Type.String())),
    writeMember: Type.Optional(Type.String()),
    options: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    createdAt: Type.String(),
    updatedAt: Type.String(),
  },
  { $id: 'Repository' },
);
export type RepositoryJson = Static<typeof Repository>;

export const User = Type.Object(
  { name: Type.String(), admin: Type.Boolean(), disabled: Type.Boolean(), hasPassword: Type.Boolean(), createdAt: Type.String() },
  { $id: 'User' },
);

export type UserJson = Static<typeof User>;

export const Token = Type.Object(
  {
    id: Type.String(),
    user: Type.String(),
    name: Type.String(),
    readOnly: Type.Boolean(),
    createdAt: Type.String(),
    expiresAt: Type.Union([Type.String(), Type.Null()]),
    revokedAt: Type.Union([Type.String(), Type.Null()]),
    lastUsedAt: Type.Union([Type.String(), Type.Null()]),
  },
  { $id: 'Token' },
);
export type TokenJson = Static<typeof Token>;

export const RoleName = Type.Union([Type.Literal('read'), Type.Literal('write'), Type.Literal('delete'), Type.Literal('admin')]);

export const Binding = Type.Object(
  { user: Type.String(), repository: Type.String(), role: RoleName, createdAt: Type.String() },
  { $id: 'Binding' },
);

export const Asset = Type.Object(
  {
    repository: Type.String(),
    path: Type.String(),
    digest: Type.String(),
    size: Type.Integer(),
    mediaType: Type.Union([Type.String(), Type.Null()]),
    metadata: Type.Record(Type.String(), Type.Unknown()),
    createdAt: Type.String(),
    updatedAt: Type.String(),
  },
  { $id: 'Asset' },
);

export const Event = Type.Object(
  {
    seq: Type.Integer(),
    at: Type.String(),
    repo: Type.Union([Type.String(), Type.Null()]),
    kind: Type.String(),
    path: Type.Union([Type.String(), Type.Null()]),
    digest: Type.Union([Type.String(), Type.Null()]),
    actor: Type.Union([Type.String(), Type.Null()]),
    data: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  },
  { $id: 'Event' },
);

export const SHARED_SCHEMAS = [ErrorBody, Repository, User, Token, Binding, Asset, Event];
