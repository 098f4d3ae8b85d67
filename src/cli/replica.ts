/**
 * `granary replica key` prints this node's feed public key (created on first use) for replicas' `--primary-key`;
 * `granary replica promote` turns a replica into a primary on its data dir: it stops following (a running server
 * notices within one feed request), takes writes, and signs its feed with a fresh key in a new epoch, which
 * fences the old primary's feed for every replica given the new key.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { loadConfig } from '../config/load.ts';

interface Flags {
  config?: string;
  dataDir?: string;
  json?: boolean;
}

function config(f: Flags) {
  return loadConfig({ file: f.config, overrides: f.dataDir ? { dataDir: f.dataDir } : {} });
}

async function keyPath(f: Flags): Promise<string> {
  const c = config(f);
  const { defaultKeyPath } = await import('../replication/keys.ts');
  return c.replication.signingKey ? resolve(c.replication.signingKey) : defaultKeyPath(c.dataDir);
}

export function registerReplica(program: Command): void {
  const cmd = program.command('replica').description('replication: feed key, promotion (local data dir)');
  cmd
    .command('key')
    .description("print this node's feed public key (PEM), creating the key pair on first use")
    .option('-c, --config <file>', 'config file')
    .option('-d, --data-dir <dir>', 'data directory (env GRANARY_DATA_DIR)')
    .action(async (f: Flags) => {
      const { loadOrCreateSigner } = await import('../replication/keys.ts');
      const signer = await loadOrCreateSigner(await keyPath(f));
      process.stdout.write(signer.publicPem);
    });
  cmd
    .command('promote')
    .description('make this replica a primary: stop following, accept writes, sign the feed with a new key and epoch')
    .option('-c, --config <file>', 'config file')
    .option('-d, --data-dir <dir>', 'data directory (env GRANARY_DATA_DIR)')
    .option('--json', 'JSON output')
    .action(async (f: Flags) => {
      const c = config(f);
      const { openMeta } = await import('../server/bootstrap.ts');
      const { promote } = await import('../replication/node.ts');
      const meta = await openMeta(c);
      try {
        const { epoch, signer } = await promote(meta.db, await keyPath(f));
        if (f.json) process.stdout.write(JSON.stringify({ epoch, fingerprint: signer.fingerprint, publicKey: signer.publicPem }) + '\n');
        else
          process.stdout.write(
            `promoted: epoch ${epoch}, new feed key ${signer.fingerprint}\n` +
              `give replicas this public key (--primary-key); feeds signed with the old key are now refused by them:\n${signer.publicPem}`,
          );
      } finally {
        await meta.close();
      }
    });
}
