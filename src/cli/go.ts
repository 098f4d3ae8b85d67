/**
 * `granary go publish <dir> --version vX.Y.Z --repo <repo>`: builds the module zip of a directory by the
 * module-zip rules (go-zip.ts) and uploads it to a Go repository (PUT /go/<repo>/<module>/@v/<version>.zip),
 * where the server checks it again and derives `.mod` and `.info`. `--output` only writes the zip.
 * Exit codes as for push/pull (exit.ts); a version that already exists is exit 1. Registering loads nothing
 * else: the command's code (go-publish.ts) is imported when it runs.
 */
import type { Command } from 'commander';
import { EXIT_HELP, runAction, usageExitCode } from './exit.ts';
import type { PublishFlags } from './go-publish.ts';

export function registerGo(program: Command): void {
  const go = program.command('go').description('Go modules: publish a module version to a Go repository');
  usageExitCode(go.command('publish <dir>'))
    .description('zip <dir> by the Go module-zip rules and publish it as <module>@<version> (module path from <dir>/go.mod)')
    .requiredOption('--version <version>', 'the version to publish, canonical semver: v1.2.3, v2.0.0-rc.1, a pseudo-version…')
    .option('--repo <repo>', 'the Go repository to publish to')
    .option('--module <path>', 'module path when <dir> has no go.mod (+incompatible versions); must match go.mod otherwise')
    .option('--server <url>', 'server URL (env GRANARY_URL)')
    .option('--url <url>', 'same as --server')
    .option('--token <token>', 'API token (env GRANARY_TOKEN)')
    .option('-o, --output <file.zip>', 'only write the module zip to this file, upload nothing')
    .option('--progress', 'show a progress bar even when stderr is not a terminal')
    .option('--json', 'print the published version as JSON')
    .addHelpText('after', EXIT_HELP)
    .action(runAction(async (dir: string, f: PublishFlags) => (await import('./go-publish.ts')).publish(dir, f)));
}

