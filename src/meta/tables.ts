/**
 * The metadata schema as TypeScript types: one interface per table, one `Database` interface.
 * Times are ISO-8601 UTC strings (portable and sortable on SQLite and PostgreSQL); JSON columns are text.
 * Booleans are 0/1 integers so the same queries run on both dialects.
 */
import type { Generated, Selectable, Insertable } from 'kysely';

export type RepoKind = 'hosted' | 'proxy' | 'group';

export interface RepositoriesTable {
  id: Generated<number>;
  name: string;
  format: string;
  kind: RepoKind;
  /** JSON: upstream, members, writeMember, options. */
  config: string;
  anonymous_read: number;
  created_at: string;
  updated_at: string;
}

export interface AssetsTable {
  id: Generated<number>;
  repo_id: number;
  path: string;
  digest: string;
  size: number;
  media_type: string | null;
  /** JSON object of typed key/values (format-defined). */
  metadata: string;
  created_at: string;
  updated_at: string;
  /** Proxy caches: when the asset was last read (throttled, hourly at most; null = never read since stored). */
  accessed_at: string | null;
}

export interface TagsTable {
  id: Generated<number>;
  repo_id: number;
  /** What the tag belongs to: an image name, a package name… */
  scope: string;
  name: string;
  /** What it points at: a digest or a version. */
  target: string;
  updated_at: string;
}

export interface UploadsTable {
  id: string;
  repo_id: number;
  scope: string;
  /** JSON: format-defined state (offset bookkeeping is in the blob store). */
  state: string;
  created_at: string;
  updated_at: string;
  expires_at: string;
}

export interface UsersTable {
  id: Generated<number>;
  name: string;
  password_hash: string | null;
  is_admin: number;
  disabled: number;
  created_at: string;
}

export interface TokensTable {
  id: string;
  user_id: number;
  name: string;
  secret_hash: string;
  read_only: number;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

export type Role = 'read' | 'write' | 'delete' | 'admin';

export interface RoleBindingsTable {
  id: Generated<number>;
  user_id: number;
  /** Repository name, or '*' for every repository. */
  repository: string;
  role: Role;
  created_at: string;
}

export interface EventsTable {
  seq: number;
  at: string;
  repo: string | null;
  kind: string;
  path: string | null;
  digest: string | null;
  actor: string | null;
  /** JSON with event-specific details (never secrets). */
  data: string | null;
}

export interface SettingsTable {
  key: string;
  value: string;
}

/** A public key a repository trusts for artifact signatures (src/trust verifies with it). */
export interface TrustedKeysTable {
  id: Generated<number>;
  repo_id: number;
  /** The repository's name for the key, unique within the repository. */
  key_id: string;
  algorithm: string;
  fingerprint: string;
  /** Canonical SPKI PEM. */
  public_key: string;
  created_at: string;
}

export interface Database {
  repositories: RepositoriesTable;
  assets: AssetsTable;
  tags: TagsTable;
  uploads: UploadsTable;
  users: UsersTable;
  tokens: TokensTable;
  role_bindings: RoleBindingsTable;
  events: EventsTable;
  settings: SettingsTable;
  trusted_keys: TrustedKeysTable;
}

export type RepositoryRow = Selectable<RepositoriesTable>;
export type AssetRow = Selectable<AssetsTable>;
export type NewAsset = Insertable<AssetsTable>;
export type TagRow = Selectable<TagsTable>;
export type UploadRow = Selectable<UploadsTable>;
export type UserRow = Selectable<UsersTable>;
export type TokenRow = Selectable<TokensTable>;
export type RoleBindingRow = Selectable<RoleBindingsTable>;
export type EventRow = Selectable<EventsTable>;
