/**
 * The configuration schema: one TypeBox schema gives the types, the defaults, the validation and the list of
 * GRANARY_* environment variables (see env.ts). Keep every key documented here; docs/configuration.md is
 * generated from the same descriptions in spirit, so a new key needs a `description`.
 */
import { Type, type Static } from '@sinclair/typebox';

const RepositoryDecl = Type.Object(
  {
    name: Type.String({ description: 'Repository name: lower-case letters, digits, ".", "_" and "-".' }),
    format: Type.String({ description: 'Format plug-in: oci, npm, go, maven, pypi, cargo, generic.' }),
    kind: Type.Union([Type.Literal('hosted'), Type.Literal('proxy'), Type.Literal('group')], { default: 'hosted' }),
    anonymousRead: Type.Optional(Type.Boolean({ description: 'Let anyone read without credentials.' })),
    upstream: Type.Optional(Type.String({ description: 'Proxy kind: upstream base URL.' })),
    members: Type.Optional(Type.Array(Type.String(), { description: 'Group kind: ordered member repositories.' })),
    writeMember: Type.Optional(Type.String({ description: 'Group kind: hosted member that receives writes.' })),
    options: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Format/kind options.' })),
  },
  { additionalProperties: false },
);

export const ConfigSchema = Type.Object(
  {
    host: Type.String({ default: '127.0.0.1', description: 'Address to listen on (0.0.0.0 for all interfaces).' }),
    port: Type.Integer({ default: 8080, minimum: 0, maximum: 65535, description: 'TCP port (0 = any free port).' }),
    dataDir: Type.String({ default: './data', description: 'Where the embedded database, blobs and keys live.' }),
    baseUrl: Type.Optional(
      Type.String({ description: 'Public URL clients reach this server at (for Location headers and auth realms).' }),
    ),
    trustProxy: Type.Boolean({ default: false, description: 'Honour X-Forwarded-* headers from a reverse proxy.' }),
    logLevel: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
      { default: 'info', description: 'pino log level.' },
    ),
    database: Type.Object(
      {
        driver: Type.Union([Type.Literal('sqlite'), Type.Literal('postgres')], { default: 'sqlite' }),
        path: Type.Optional(Type.String({ description: 'SQLite file (default <dataDir>/granary.db).' })),
        url: Type.Optional(Type.String({ description: 'PostgreSQL connection URL (driver postgres).' })),
        poolSize: Type.Integer({ default: 10, minimum: 1, maximum: 1000 }),
      },
      { default: {}, additionalProperties: false },
    ),
    blobs: Type.Object(
      {
        driver: Type.Union([Type.Literal('fs'), Type.Literal('s3')], { default: 'fs' }),
        path: Type.Optional(Type.String({ description: 'Filesystem driver root (default <dataDir>/blobs).' })),
        s3: Type.Optional(
          Type.Object(
            {
              bucket: Type.String({ minLength: 1, description: 'Bucket holding the blobs.' }),
              prefix: Type.Optional(Type.String({ description: 'Key prefix inside the bucket.' })),
              endpoint: Type.Optional(Type.String({ description: 'S3-compatible endpoint URL (MinIO, Ceph RGW, Garage); AWS when unset.' })),
              region: Type.Optional(Type.String({ description: 'Region (default AWS_REGION, else us-east-1).' })),
              forcePathStyle: Type.Optional(Type.Boolean({ description: 'Bucket in the path, not the host name (most self-hosted servers).' })),
              accessKeyId: Type.Optional(Type.String({ description: 'Explicit credentials; else the AWS SDK default chain.' })),
              secretAccessKey: Type.Optional(Type.String()),
              sessionToken: Type.Optional(Type.String()),
              partSize: Type.Optional(Type.Integer({ minimum: 5 * 1024 * 1024, description: 'Multipart part size (default 8 MiB).' })),
              queueSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 64, description: 'Parts in flight per write (default 2).' })),
            },
            { additionalProperties: false, description: 'S3 driver settings (blobs.driver: s3).' },
          ),
        ),
      },
      { default: {}, additionalProperties: false },
    ),
    auth: Type.Object(
      {
        adminToken: Type.Optional(
          Type.String({ minLength: 16, description: 'Token of the admin user, instead of a generated one.' }),
        ),
        anonymousRead: Type.Boolean({
          default: false,
          description: 'Default of anonymousRead for repositories created without saying.',
        }),
        anonymousWrite: Type.Boolean({
          default: false,
          description: 'Let anyone write to every repository (a trusted laptop only).',
        }),
        failedLoginLimit: Type.Integer({ default: 10, minimum: 1, description: 'Failed logins per window per user+IP.' }),
        failedLoginWindowSeconds: Type.Integer({ default: 300, minimum: 1 }),
        tokenTtlDays: Type.Optional(Type.Integer({ minimum: 1, description: 'Default expiry of new API tokens.' })),
      },
      { default: {}, additionalProperties: false },
    ),
    limits: Type.Object(
      {
        jsonBodyBytes: Type.Integer({ default: 16 * 1024 * 1024, minimum: 1024, description: 'Max JSON/form body.' }),
        uploadBytes: Type.Integer({
          default: 64 * 1024 * 1024 * 1024,
          minimum: 1024,
          description: 'Max bytes of one streamed upload.',
        }),
        headerBytes: Type.Integer({ default: 16 * 1024, minimum: 1024, maximum: 1024 * 1024 }),
        requestTimeoutSeconds: Type.Integer({ default: 0, minimum: 0, description: '0 = no limit (large uploads).' }),
        shutdownGraceSeconds: Type.Integer({ default: 30, minimum: 0 }),
      },
      { default: {}, additionalProperties: false },
    ),
    rateLimit: Type.Object(
      {
        enabled: Type.Boolean({ default: false }),
        requestsPerMinute: Type.Integer({ default: 6000, minimum: 1, description: 'Per authenticated principal.' }),
        anonymousPerMinute: Type.Integer({ default: 600, minimum: 1, description: 'Per client IP, anonymous.' }),
      },
      { default: {}, additionalProperties: false },
    ),
    oci: Type.Object(
      {
        defaultRepository: Type.Optional(
          Type.String({ description: 'OCI repository that serves bare /v2/<name>/… paths (so localhost:8080/alpine works).' }),
        ),
        uploadExpiryMinutes: Type.Integer({ default: 1440, minimum: 1, description: 'Idle OCI upload sessions expire after this.' }),
        tokenTtlSeconds: Type.Integer({ default: 300, minimum: 30, maximum: 86400, description: 'Lifetime of Docker registry tokens.' }),
      },
      { default: {}, additionalProperties: false },
    ),
    memflow: Type.Object(
      {
        defaultRepository: Type.Optional(
          Type.String({ description: 'Generic repository whose memflow-registry API is also served at the server root (/plugins, /files).' }),
        ),
      },
      { default: {}, additionalProperties: false },
    ),
    repositories: Type.Array(RepositoryDecl, {
      default: [],
      description: 'Repositories created or updated at start (idempotent).',
    }),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
export type RepositoryDeclaration = Static<typeof RepositoryDecl>;
