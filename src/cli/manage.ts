/** `granary repo|user|token …`: management commands over the API or the local data dir. */
import type { Command } from 'commander';
import { withBackendFlags, CliError, type BackendFlags } from './flags.ts';
import type { Backend } from './backend.ts';

/** Loads the backend (and with it the server code it uses) only when a command runs. */
async function withBackend<T>(f: BackendFlags, fn: (b: Backend) => Promise<T>): Promise<T> {
  const { withBackend: run } = await import('./backend.ts');
  return run(f, fn);
}
import { printTable } from './table.ts';
import type { Role } from '../meta/tables.ts';

type Flags = BackendFlags & { json?: boolean };

async function readSecretFromStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new CliError('--password-stdin expects the password on standard input');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export function registerManage(program: Command): void {
  const repo = program.command('repo').description('manage repositories');
  withBackendFlags(repo.command('ls').description('list repositories').option('--json', 'JSON output')).action((f: Flags) =>
    withBackend(f, async (b) => printTable(await b.listRepos(), ['name', 'format', 'kind', 'anonymousRead', 'upstream', 'members'], f.json)),
  );
  withBackendFlags(
    repo
      .command('create <name>')
      .description('create a repository')
      .requiredOption('-f, --format <format>', 'format: oci, npm, go, maven, pypi, cargo, generic')
      .option('-k, --kind <kind>', 'hosted, proxy or group', 'hosted')
      .option('--upstream <url>', 'proxy: upstream URL')
      .option('--members <names>', 'group: comma-separated members, in order')
      .option('--write-member <name>', 'group: hosted member receiving writes')
      .option('--anonymous-read', 'let anyone read without credentials')
      .option('--options <json>', 'format options as JSON'),
  ).action(
    (name: string, f: Flags & { format: string; kind: string; upstream?: string; members?: string; writeMember?: string; anonymousRead?: boolean; options?: string }) =>
      withBackend(f, async (b) => {
        let options: Record<string, unknown> | undefined;
        if (f.options) {
          try {
            options = JSON.parse(f.options) as Record<string, unknown>;
          } catch {
            throw new CliError('--options must be JSON');
          }
        }
        const r = await b.createRepo({
          name,
          format: f.format,
          kind: f.kind as 'hosted' | 'proxy' | 'group',
          upstream: f.upstream,
          members: f.members?.split(',').map((m) => m.trim()).filter(Boolean),
          writeMember: f.writeMember,
          anonymousRead: f.anonymousRead,
          options,
        });
        process.stdout.write(`created ${r.kind} ${r.format} repository ${r.name}\n`);
      }),
  );
  withBackendFlags(repo.command('rm <name>').description('delete a repository and everything in it')).action((name: string, f: Flags) =>
    withBackend(f, async (b) => {
      await b.removeRepo(name);
      process.stdout.write(`deleted repository ${name}\n`);
    }),
  );

  const user = program.command('user').description('manage users');
  withBackendFlags(user.command('ls').description('list users').option('--json', 'JSON output')).action((f: Flags) =>
    withBackend(f, async (b) => printTable(await b.listUsers(), ['name', 'admin', 'disabled', 'hasPassword', 'createdAt'], f.json)),
  );
  withBackendFlags(
    user
      .command('add <name>')
      .description('create a user (password from stdin with --password-stdin; token-only users need none)')
      .option('--password-stdin', 'read the password from standard input')
      .option('--admin', 'make the user a global admin'),
  ).action((name: string, f: Flags & { passwordStdin?: boolean; admin?: boolean }) =>
    withBackend(f, async (b) => {
      const password = f.passwordStdin ? await readSecretFromStdin() : undefined;
      const u = await b.addUser({ name, password, admin: f.admin });
      process.stdout.write(`created user ${u.name}${u.admin ? ' (admin)' : ''}\n`);
    }),
  );
  withBackendFlags(user.command('rm <name>').description('delete a user and their tokens')).action((name: string, f: Flags) =>
    withBackend(f, async (b) => {
      await b.removeUser(name);
      process.stdout.write(`deleted user ${name}\n`);
    }),
  );
  withBackendFlags(user.command('grant <name> <repository> <role>').description('give a user read|write|delete|admin on a repository ("*" = all)')).action(
    (name: string, repository: string, role: string, f: Flags) =>
      withBackend(f, async (b) => {
        await b.grant({ user: name, repository, role: role as Role });
        process.stdout.write(`${name} has ${role} on ${repository}\n`);
      }),
  );

  const token = program.command('token').description('manage API tokens');
  withBackendFlags(
    token
      .command('create <name>')
      .description('create an API token; prints the secret once')
      .option('-u, --user <user>', 'owner (default: you; required in local mode)')
      .option('--read-only', 'token can only read')
      .option('--expires-in-days <n>', 'expiry in days'),
  ).action((name: string, f: Flags & { user?: string; readOnly?: boolean; expiresInDays?: string }) =>
    withBackend(f, async (b) => {
      const t = await b.createToken({ name, user: f.user, readOnly: f.readOnly, expiresInDays: f.expiresInDays ? Number(f.expiresInDays) : undefined });
      if (f.json) process.stdout.write(JSON.stringify(t) + '\n');
      else process.stdout.write(`${t.token}\n`);
      process.stderr.write(`token ${t.info.id} for ${t.info.user}${t.info.expiresAt ? `, expires ${t.info.expiresAt}` : ''}: store it now, it is not shown again\n`);
    }),
  );
  withBackendFlags(
    token
      .command('ls')
      .description("list tokens, never their secrets: yours over HTTP, everyone's on the local data dir")
      .option('-u, --user <user>', 'whose tokens')
      .option('-a, --all', "every user's tokens (admins)")
      .option('--json', 'JSON output'),
  ).action((f: Flags & { user?: string; all?: boolean }) =>
    withBackend(f, async (b) => printTable(await b.listTokens(f.user, f.all), ['id', 'user', 'name', 'readOnly', 'createdAt', 'expiresAt', 'revokedAt', 'lastUsedAt'], f.json)),
  );
  withBackendFlags(token.command('revoke <id>').description('revoke a token')).action((id: string, f: Flags) =>
    withBackend(f, async (b) => {
      await b.revokeToken(id);
      process.stdout.write(`revoked token ${id}\n`);
    }),
  );
}
