/**
 * Accept-header negotiation for GET/HEAD /v2/<name>/manifests/<ref>. See `negotiate` for the decision taken.
 */

export interface AcceptEntry {
  type: string;
  q: number;
}

/** Parses one or more Accept header values into media ranges with their q (default 1). */
export function parseAccept(accept: string | readonly string[] | undefined): AcceptEntry[] {
  if (accept === undefined) return [];
  const values = typeof accept === 'string' ? [accept] : accept;
  const out: AcceptEntry[] = [];
  for (const value of values) {
    for (const part of value.split(',')) {
      const [head, ...params] = part.split(';');
      const type = head.trim().toLowerCase();
      if (type === '' || !type.includes('/')) continue;
      let q = 1;
      for (const p of params) {
        const [k, v] = p.split('=').map((s) => s.trim());
        if (k.toLowerCase() === 'q') {
          const n = Number(v);
          q = Number.isFinite(n) && n >= 0 && n <= 1 ? n : 1;
        }
      }
      out.push({ type, q });
    }
  }
  return out;
}

export interface Negotiation {
  /** Always the stored type: the bytes are served exactly as pushed. */
  contentType: string;
  /** false when an Accept header was sent and none of its ranges covers the stored type. Informational. */
  acceptable: boolean;
}

/**
 * Content negotiation for GET/HEAD /manifests/<ref>.
 *
 * Decision: Granary always serves the stored manifest with its stored Content-Type, whatever the Accept header
 * says. It never converts (no schema 1 down-conversion — schema 1 is not stored at all — and no rewriting of a
 * manifest list to its linux/amd64 entry for clients that do not accept lists), and never answers 404/406 for
 * an Accept mismatch. Why: the spec only says the client SHOULD send Accept and the registry's Content-Type
 * SHOULD match what was pushed; content-negotiation.md is still a TODO. CNCF Distribution v3 answers
 * MANIFEST_UNKNOWN (404) when an OCI manifest/index is not in Accept, which makes curl-without-Accept and
 * older tools see "not found" for content that exists; zot serves the stored type. `acceptable` lets the route
 * log the mismatch. Clients verify by digest and Content-Type, so a client that cannot read the type fails
 * clearly rather than silently.
 */
export function negotiate(accept: string | readonly string[] | undefined, storedMediaType: string): Negotiation {
  const entries = parseAccept(accept);
  if (entries.length === 0) return { contentType: storedMediaType, acceptable: true };
  const stored = storedMediaType.toLowerCase();
  const major = stored.split('/')[0];
  // The most specific matching range decides (RFC 9110 §12.5.1), so `*/*;q=0` with an exact match still accepts.
  const exact = entries.filter((e) => e.type === stored);
  const partial = entries.filter((e) => e.type === `${major}/*`);
  const any = entries.filter((e) => e.type === '*/*');
  const decide = exact.length > 0 ? exact : partial.length > 0 ? partial : any;
  const acceptable = decide.some((e) => e.q > 0);
  return { contentType: storedMediaType, acceptable };
}
