/** `granary config check`: loads and validates the configuration, printing the resolved result (no secrets). */
import type { Command } from 'commander';
import { loadConfig } from '../config/load.ts';
import { validateRepository } from '../repos/validate.ts';
import type { RepositoryRecord } from '../meta/repos.ts';
import { ConfigError } from '../config/errors.ts';
import { GranaryError } from '../server/errors.ts';

export async function checkConfig(opts: { config?: string }): Promise<string> {
  const config = loadConfig({ file: opts.config });
  const { checkFormats, findFormat } = await import('../formats/registry.ts');
  checkFormats();
  // Validate declared repositories against each other without touching a database.
  const known = new Map<string, RepositoryRecord>();
  config.repositories.forEach((d, i) => {
    known.set(d.name, {
      id: i,
      name: d.name,
      format: d.format,
      kind: d.kind ?? 'hosted',
      anonymousRead: d.anonymousRead ?? false,
      config: { upstream: d.upstream, members: d.members, writeMember: d.writeMember, options: d.options },
      createdAt: '',
      updatedAt: '',
    });
  });
  config.repositories.forEach((d, i) => {
    try {
      const r = known.get(d.name)!;
      validateRepository({ ...r, config: { ...r.config } }, findFormat(d.format), (n) => known.get(n));
    } catch (e) {
      if (e instanceof GranaryError) {
        const field = (e.details as { field?: string } | undefined)?.field;
        throw new ConfigError(`repositories.${i}${field ? '.' + field : ''}`, e.message);
      }
      throw e;
    }
  });
  const s3 = config.blobs.s3;
  const shown = {
    ...config,
    auth: { ...config.auth, adminToken: config.auth.adminToken ? '[set]' : undefined },
    blobs: { ...config.blobs, ...(s3 ? { s3: { ...s3, secretAccessKey: s3.secretAccessKey ? '[set]' : undefined, sessionToken: s3.sessionToken ? '[set]' : undefined } } : {}) },
  };
  return JSON.stringify(shown, null, 2);
}

export function registerConfig(program: Command): void {
  program
    .command('config')
    .description('configuration tools')
    .command('check')
    .description('validate the configuration (file + GRANARY_* env) and print the resolved result')
    .option('-c, --config <file>', 'config file')
    .action(async (opts: { config?: string }) => {
      process.stdout.write((await checkConfig(opts)) + '\n');
      process.stderr.write('configuration is valid\n');
    });
}
