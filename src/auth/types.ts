/**
 * Who is asking (a principal) and what for (an action). Interfaces only; implementations import this file.
 */

/** Actions a route can require, ordered: each implies the ones before it. */
export const ACTIONS = ['read', 'write', 'delete', 'admin'] as const;
export type Action = (typeof ACTIONS)[number];

export function actionRank(a: Action): number {
  return ACTIONS.indexOf(a);
}

export interface AnonymousPrincipal {
  kind: 'anonymous';
}

export interface UserPrincipal {
  kind: 'user';
  id: number;
  name: string;
  admin: boolean;
  /** How the credentials arrived. */
  via: 'password' | 'token' | 'jwt';
  /** API token used, if any (for audit and revocation). */
  tokenId?: string;
  /** A read-only token caps every action at read. */
  readOnly: boolean;
  /**
   * A further restriction, e.g. the access claims of a Docker registry JWT: the principal may do only what
   * this allows *and* what its roles allow. `image` (a name inside the repository) asks about that image only;
   * without it, whether the action is allowed on any part of the repository.
   */
  restrict?: (repository: string, action: Action, image?: string) => boolean;
}

export type Principal = AnonymousPrincipal | UserPrincipal;

export const ANONYMOUS: AnonymousPrincipal = Object.freeze({ kind: 'anonymous' });

/** The name written to the event log as the actor. */
export function actorOf(p: Principal): string | null {
  return p.kind === 'user' ? p.name : null;
}

/**
 * Verifies a bearer credential that is not an API token (e.g. a JWT issued by the OCI token endpoint).
 * Returns null when the credential is not of its kind, throws (GranaryError UNAUTHORIZED) when it is of its
 * kind but invalid or expired. An anonymous caller's JWT yields ANONYMOUS.
 */
export type BearerVerifier = (token: string) => Promise<Principal | null>;
