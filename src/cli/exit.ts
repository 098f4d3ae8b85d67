/**
 * Exit codes of the artifact commands (push, pull, sign, verify, inspect), one place for scripts to rely on:
 *   0 ok · 1 verification failed or not found · 2 usage or configuration error · 3 server or network error.
 * `runAction` wraps a command's action so every failure ends with one `granary: …` line and the right code.
 */
import { CommanderError, type Command } from 'commander';
import { isTrustError } from '../trust/index.ts';
import { isIntrospectError } from '../introspect/index.ts';
import { CliError } from './flags.ts';
import { ConfigError } from '../config/errors.ts';

export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, SERVER: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The help text every artifact command ends with. */
export const EXIT_HELP = `
Exit codes:
  0  success
  1  verification failed (bad signature, digest mismatch, malformed file) or not found
  2  usage or configuration error (bad flags, unreadable key, missing --url, 400/401/403 from the server)
  3  server or network error (unreachable, 5xx, unexpected answer)`;

/** A failure that carries its exit code. */
export class ExitError extends Error {
  readonly code: ExitCode;
  constructor(code: ExitCode, message: string) {
    super(message);
    this.code = code;
  }
}

export const failed = (message: string): ExitError => new ExitError(EXIT.FAILED, message);
export const usage = (message: string): ExitError => new ExitError(EXIT.USAGE, message);
export const serverError = (message: string): ExitError => new ExitError(EXIT.SERVER, message);

function codeOf(e: unknown): ExitCode | undefined {
  if (e instanceof ExitError) return e.code;
  if (e instanceof CliError || e instanceof ConfigError || isTrustError(e)) return EXIT.USAGE;
  if (isIntrospectError(e)) return EXIT.FAILED;
  const errno = (e as NodeJS.ErrnoException | undefined)?.code;
  if (errno === 'ENOENT' || errno === 'EACCES' || errno === 'EISDIR' || errno === 'EPERM' || errno === 'ERR_FS_FILE_TOO_LARGE') return EXIT.USAGE;
  return undefined;
}

/** Wraps an action: known failures print `granary: <message>` and set the exit code; bugs still throw. */
export function runAction<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      const code = codeOf(e);
      if (code === undefined) throw e;
      process.stderr.write(`granary: ${(e as Error).message}\n`);
      process.exitCode = code;
    }
  };
}

/** Commander reports usage errors (unknown option, missing argument) with exit 1; these commands use 2. */
export function usageExitCode(cmd: Command): Command {
  return cmd.exitOverride((err) => {
    if (err.exitCode !== 0) throw new CommanderError(EXIT.USAGE, err.code, err.message);
    throw err;
  });
}
