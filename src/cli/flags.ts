/**
 * The light part of the management commands: connection flags and the CLI's own error. Kept apart from
 * backend.ts so that registering commands loads no server code (each command loads what it needs when it runs).
 */
import type { Command } from 'commander';

export interface BackendFlags {
  url?: string;
  token?: string;
  config?: string;
  dataDir?: string;
}

/** Adds the connection flags every management command takes. */
export function withBackendFlags(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'server URL (env GRANARY_URL); without it, the local data dir is used')
    .option('--token <token>', 'API token for --url (env GRANARY_TOKEN)')
    .option('-c, --config <file>', 'config file, for local mode')
    .option('-d, --data-dir <dir>', 'data directory, for local mode (env GRANARY_DATA_DIR)');
}

export class CliError extends Error {}
