/** `granary serve`: load config, build services and app, listen, and shut down gracefully on SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { loadConfig, type LoadOptions } from '../config/load.ts';

export interface ServeFlags {
  config?: string;
  host?: string;
  port?: string;
  dataDir?: string;
  replicaOf?: string[];
  primaryKey?: string;
  replicationToken?: string;
  replicationBlobs?: string;
  tlsCert?: string;
  tlsKey?: string;
}

export function configFromFlags(f: ServeFlags): LoadOptions {
  const overrides: Record<string, unknown> = {};
  if (f.host !== undefined) overrides.host = f.host;
  if (f.port !== undefined) overrides.port = Number(f.port);
  if (f.dataDir !== undefined) overrides.dataDir = f.dataDir;
  const replication: Record<string, unknown> = {};
  if (f.replicaOf?.length) replication.replicaOf = f.replicaOf;
  if (f.primaryKey !== undefined) replication.primaryKey = f.primaryKey;
  if (f.replicationToken !== undefined) replication.token = f.replicationToken;
  if (f.replicationBlobs !== undefined) replication.blobs = f.replicationBlobs;
  if (Object.keys(replication).length) overrides.replication = replication;
  const tls: Record<string, unknown> = {};
  if (f.tlsCert !== undefined) tls.certFile = f.tlsCert;
  if (f.tlsKey !== undefined) tls.keyFile = f.tlsKey;
  if (Object.keys(tls).length) overrides.tls = tls;
  return { file: f.config, overrides };
}

export async function serve(f: ServeFlags): Promise<void> {
  const config = loadConfig(configFromFlags(f));
  // Loaded here, not at the top: other commands must not pay for the server's modules.
  const { createLogger, createServices } = await import('../server/bootstrap.ts');
  const { buildApp } = await import('../server/app.ts');
  const { loadTls, tlsEnabled } = await import('../server/tls.ts');
  // Unreadable or mismatched TLS files are a config error found before anything else happens — in particular
  // before a first start creates the admin user, whose token is shown only once the server listens.
  if (tlsEnabled(config.tls)) loadTls(config.tls);
  const { startJanitor } = await import('../server/janitor.ts');
  const log = createLogger(config);
  const started = await createServices(config, log);
  const app = await buildApp(started.services);
  const stopJanitor = startJanitor(started.services);
  const address = await app.listen({ host: config.host, port: config.port });
  if (started.firstAdminToken) {
    // Printed once, to the terminal only — never through the logger.
    process.stderr.write(
      `\n  First start: created user "admin". Its API token (shown only now, store it safely):\n\n    ${started.firstAdminToken}\n\n` +
        `  Use it as: curl -H "Authorization: Bearer <token>" ${address}/api/v1/me\n\n`,
    );
  }
  log.info({ address, tls: tlsEnabled(config.tls), dataDir: config.dataDir, database: config.database.driver, blobs: config.blobs.driver }, 'granary listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: draining in-flight requests');
    const force = setTimeout(() => {
      log.warn('shutdown grace period over; exiting');
      process.exit(1);
    }, config.limits.shutdownGraceSeconds * 1000);
    force.unref();
    await stopJanitor();
    await app.close();
    await started.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the registry (embedded defaults: SQLite + ./data, port 8080)')
    .option('-c, --config <file>', 'config file (default ./granary.yaml if present; env GRANARY_CONFIG)')
    .option('--host <host>', 'address to listen on (env GRANARY_HOST)')
    .option('-p, --port <port>', 'port (env GRANARY_PORT)')
    .option('-d, --data-dir <dir>', 'data directory (env GRANARY_DATA_DIR)')
    .option('--replica-of <url>', 'run as a read-only replica of this primary; repeat to add blob sources (other replicas)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--primary-key <pem>', "the primary's feed public key (env GRANARY_REPLICATION_PRIMARY_KEY)")
    .option('--replication-token <token>', 'API token for the primary and blob sources (env GRANARY_REPLICATION_TOKEN)')
    .option('--replication-blobs <mode>', 'eager (default) or lazy (env GRANARY_REPLICATION_BLOBS)')
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (chain); needs --tls-key (env GRANARY_TLS_CERT_FILE)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert (env GRANARY_TLS_KEY_FILE)')
    .action((opts: ServeFlags) => serve(opts));
}
