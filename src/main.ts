/** Entry point of the `granary` command: one sub-command per file in cli/. */
import { Command, CommanderError } from 'commander';
import { registerServe } from './cli/serve.ts';
import { registerManage } from './cli/manage.ts';
import { registerConfig } from './cli/config-check.ts';
import { registerGc } from './cli/gc.ts';
import { registerArtifacts } from './cli/artifacts.ts';
import { registerReplica } from './cli/replica.ts';
import { registerGo } from './cli/go.ts';
import { registerMirrorConfig } from './cli/mirror-config.ts';
import { CliError } from './cli/flags.ts';
import { ConfigError } from './config/errors.ts';
import { GranaryError } from './server/errors.ts';

const program = new Command('granary')
  .description('Granary: one registry for OCI images, npm, Go, Maven, PyPI, Cargo and typed binaries')
  .version('0.1.0')
  // Program options (only -V/--version) are read before the sub-command only, so `go publish --version v1.2.3` is the sub-command's.
  .enablePositionalOptions()
  .exitOverride();
registerServe(program);
registerManage(program);
registerConfig(program);
registerGc(program);
registerArtifacts(program);
registerReplica(program);
registerGo(program);
registerMirrorConfig(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  if (e instanceof ConfigError || e instanceof CliError || e instanceof GranaryError) {
    process.stderr.write(`granary: ${e.message}\n`);
    process.exit(2);
  }
  throw e;
}
