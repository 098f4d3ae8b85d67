/** `granary gc`: remove blobs that no asset references, on the local data dir. */
import type { Command } from 'commander';
import { loadConfig } from '../config/load.ts';
import { DEFAULT_GC_GRACE_MS } from '../gc/collect.ts';

export function registerGc(program: Command): void {
  program
    .command('gc')
    .description('remove blobs no repository references any more (local data dir; safe while the server runs)')
    .option('-c, --config <file>', 'config file')
    .option('-d, --data-dir <dir>', 'data directory (env GRANARY_DATA_DIR)')
    .option('--dry-run', 'report what would be removed, remove nothing')
    .option('--grace-minutes <n>', 'keep unreferenced blobs younger than this', String(DEFAULT_GC_GRACE_MS / 60_000))
    .option('--json', 'JSON output')
    .action(async (f: { config?: string; dataDir?: string; dryRun?: boolean; graceMinutes: string; json?: boolean }) => {
      const config = loadConfig({ file: f.config, overrides: f.dataDir ? { dataDir: f.dataDir } : {} });
      const { openBlobs, openMeta } = await import('../server/bootstrap.ts');
      const { collectGarbage } = await import('../gc/collect.ts');
      const meta = await openMeta(config);
      const blobs = await openBlobs(config, { sweepOnStart: false });
      try {
        const r = await collectGarbage(meta.db, blobs, { dryRun: f.dryRun, graceMs: Number(f.graceMinutes) * 60_000 });
        if (f.json) process.stdout.write(JSON.stringify(r) + '\n');
        else
          process.stdout.write(
            `${r.dryRun ? 'would remove' : 'removed'} ${r.removed} blob(s), ${r.bytesFreed} bytes; ${r.live} live, ${r.young} unreferenced but younger than the grace period, ${r.scanned} scanned\n`,
          );
      } finally {
        await blobs.close();
        await meta.close();
      }
    });
}
