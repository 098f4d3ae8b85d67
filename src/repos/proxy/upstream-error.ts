/** The error every proxy module raises for upstream trouble (its own module: upstream.ts and auth.ts both throw it). */
import { GranaryError } from '../../server/errors.ts';

/** Upstream trouble the client should hear about: status 502 (or 504 on timeouts), naming the upstream. */
export class UpstreamError extends GranaryError {
  /** The upstream's HTTP status, or null when it gave none (unreachable, timed out, broke off). */
  readonly upstreamStatus: number | null;
  constructor(message: string, upstreamStatus: number | null, cause?: unknown) {
    super('UPSTREAM_FAILED', message, { cause, details: { upstreamStatus } });
    this.upstreamStatus = upstreamStatus;
  }
}
