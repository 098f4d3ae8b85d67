/**
 * Keys whose values never leave the configuration they were written into — not into the event log, not into the
 * replication feed: inline upstream credentials of proxy repositories (`options.proxy.auth.password`…) and S3-style
 * secrets. Their `…Env` forms (environment variable names) are not secrets and stay.
 */
const SECRET_KEYS = /^(password|token|refreshToken|secretAccessKey|sessionToken|secret)$/;

/** A deep copy of `v` without secret keys, at any depth. */
export function redactSecrets(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(redactSecrets);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (!SECRET_KEYS.test(k)) out[k] = redactSecrets(x);
  return out;
}
