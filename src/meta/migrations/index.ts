/**
 * The ordered list of migrations. Names sort by date; Kysely's migrator refuses out-of-order history.
 */
import type { Migration, MigrationProvider } from 'kysely';
import * as initial from './2026-11-23-0001-initial.ts';
import * as trustedKeys from './2026-11-23-0002-trusted-keys.ts';
import * as replication from './2026-11-23-0003-replication.ts';
import * as assetAccess from './2026-11-23-0004-asset-access.ts';

const migrations: Record<string, Migration> = {
  '2026-11-23-0001-initial': initial,
  '2026-11-23-0002-trusted-keys': trustedKeys,
  '2026-11-23-0003-replication': replication,
  '2026-11-23-0004-asset-access': assetAccess,
};

export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return migrations;
  },
};
