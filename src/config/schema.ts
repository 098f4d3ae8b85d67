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

const MirrorRule = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]*$', description: 'Rule name (status, metrics).' }),
    direction: Type.Union([Type.Literal('push'), Type.Literal('pull')], { default: 'push', description: 'push: copy local pushes out as they happen; pull: copy from the remote on a schedule.' }),
    intervalSeconds: Type.Optional(
      Type.Integer({ minimum: 1, description: 'Pull rules: how often the remote is read (default 300). Push rules: how often a full reconciliation runs besides the event-driven copies (absent: events only).' }),
    ),
    repository: Type.String({ description: 'Local OCI repository to mirror.' }),
    url: Type.String({ description: 'Remote registry base URL, e.g. https://registry.example.com.' }),
    prefix: Type.Optional(Type.String({ description: 'Remote repository path prefix (default: the image name as is).' })),
    images: Type.Array(Type.String(), { default: ['**'], description: 'Image names (globs) to mirror; pull rules name images exactly.' }),
    tags: Type.Array(Type.String(), { default: ['**'], description: 'Tags (globs) to mirror.' }),
    username: Type.Optional(Type.String()),
    password: Type.Optional(Type.String()),
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
    tls: Type.Object(
      {
        certFile: Type.Optional(Type.String({ minLength: 1, description: 'PEM certificate (chain) to serve HTTPS with; needs tls.keyFile.' })),
        keyFile: Type.Optional(Type.String({ minLength: 1, description: 'PEM private key of tls.certFile.' })),
        reloadSeconds: Type.Integer({ default: 60, minimum: 0, maximum: 86400, description: 'How often the two files are checked for replacement (0 = never).' }),
      },
      { default: {}, additionalProperties: false, description: 'Built-in HTTPS; plain HTTP when neither file is set.' },
    ),
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
        idleTimeoutSeconds: Type.Integer({ default: 30, minimum: 0, description: 'PostgreSQL: close pooled connections idle this long (0 = never).' }),
        connectTimeoutSeconds: Type.Integer({ default: 10, minimum: 0, description: 'PostgreSQL: give up opening a connection after this (0 = wait forever).' }),
        statementTimeoutSeconds: Type.Integer({ default: 0, minimum: 0, description: 'PostgreSQL: server-side limit of one statement (0 = none).' }),
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
              redirect: Type.Optional(Type.Boolean({ description: 'Answer blob downloads with 307 to a presigned URL (bytes bypass the nodes).' })),
              redirectExpirySeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 604800, description: 'Lifetime of presigned URLs (default 300).' })),
              redirectEndpoint: Type.Optional(Type.String({ description: 'Endpoint clients reach the bucket at, if not `endpoint`.' })),
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
    replication: Type.Object(
      {
        replicaOf: Type.Array(Type.String(), {
          default: [],
          description: 'Replica mode: the primary (first URL, whose feed is followed) and further blob sources, in order. Empty = not a replica.',
        }),
        primaryKey: Type.Optional(Type.String({ description: "Replica: PEM file with the primary's feed public key (Ed25519 or P-256)." })),
        token: Type.Optional(Type.String({ description: 'Replica: API token sent to the primary and to blob sources (an admin or a user with read on "*").' })),
        repositories: Type.Array(Type.String(), { default: ['**'], description: 'Replica: repository names or globs to replicate.' }),
        blobs: Type.Union([Type.Literal('eager'), Type.Literal('lazy')], {
          default: 'eager',
          description: 'Replica: fetch every blob before applying (eager) or on first read (lazy).',
        }),
        signingKey: Type.Optional(Type.String({ description: 'Primary: PEM private key signing the feed (default <dataDir>/keys/replication.pem, created on first use).' })),
        waitSeconds: Type.Integer({ default: 20, minimum: 0, maximum: 120, description: 'Long-poll time of one feed request.' }),
        mirrors: Type.Array(MirrorRule, { default: [], description: 'Push and pull mirroring of OCI repositories to and from other registries.' }),
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
