/**
 * What an OCI registry JWT may grant and what it does grant: scope strings parsed from the token request, the
 * access entries put in a token (only what the principal's roles allow), and the verifier's side — the grants
 * read back from a token's `access` claims, per image name, so a token for `team/app` cannot touch `team/other`
 * although both live in the Granary repository `team` (as Distribution and Harbor scope their tokens).
 *
 * Spec: distribution/distribution docs/spec/auth/scope.md (`type[(class)]:name:actions`), jwt.md (`access`).
 */
import type { Action, Principal, UserPrincipal } from '../../auth/types.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import type { Services } from '../../server/services.ts';
import { GranaryError } from '../../server/errors.ts';
import { isValidName } from './names.ts';
import { OCI_FORMAT, resolveName } from './target.ts';

const MAX_SCOPES = 64;
const ACTION_OF = { pull: 'read', push: 'write', delete: 'delete' } as const satisfies Record<string, Action>;

/** One requested scope, and (same shape) one `access` entry of a token. */
export interface Scope {
  type: string;
  name: string;
  actions: string[];
}
export type AccessEntry = Scope;

/**
 * Parses scope strings (each may hold several, space-separated: docker's POST form does that). The name is
 * everything between the first and the last ':' (a name may carry a `host:port` in some clients); a type may
 * carry a class, `repository(plugin)`, which is dropped. Malformed entries are ignored, as Distribution does.
 */
export function parseScopes(values: readonly string[]): Scope[] {
  const out: Scope[] = [];
  for (const v of values) {
    for (const one of v.split(' ')) {
      const first = one.indexOf(':');
      const last = one.lastIndexOf(':');
      if (first <= 0 || last === first) continue;
      const type = one.slice(0, first).replace(/\(.*\)$/, '');
      const name = one.slice(first + 1, last);
      const actions = one.slice(last + 1).split(',').filter((a) => a !== '');
      if (!name) continue;
      const same = out.find((s) => s.type === type && s.name === name);
      if (same) same.actions = [...new Set([...same.actions, ...actions])];
      else out.push({ type, name, actions: [...new Set(actions)] });
      if (out.length > MAX_SCOPES) throw new GranaryError('BAD_REQUEST', `more than ${MAX_SCOPES} scopes requested`);
    }
  }
  return out;
}

/**
 * The Granary repository and image an OCI name addresses (as the routes resolve it: target.ts), if the
 * repository exists and is OCI. Both sides key grants by this pair, so `alpine` and `<default repo>/alpine`
 * (one image under a default repository) are the same grant.
 */
async function imageOf(s: Services, name: string): Promise<{ repo: RepositoryRecord; image: string } | null> {
  if (!isValidName(name)) return null;
  const { repo: repoName, image } = await resolveName(s, name);
  const repo = await s.repos.get(repoName);
  return repo && repo.format === OCI_FORMAT ? { repo, image } : null;
}

/** The access entries to put in a token: each requested scope, with only the actions the principal may do. */
export async function grant(s: Services, p: Principal, scopes: readonly Scope[]): Promise<AccessEntry[]> {
  const out: AccessEntry[] = [];
  for (const sc of scopes) {
    const actions: string[] = [];
    if (sc.type === 'repository') {
      const target = await imageOf(s, sc.name);
      if (target) {
        for (const a of sc.actions) {
          const need: Action = a === '*' ? 'delete' : (ACTION_OF as Record<string, Action>)[a];
          if (need && (await s.auth.can(p, need, target.repo))) actions.push(a);
        }
      }
    } else if (sc.type === 'registry' && sc.name === 'catalog') {
      if (sc.actions.includes('*') && (await s.auth.can(p, 'read', null))) actions.push('*');
    }
    out.push({ type: sc.type, name: sc.name, actions });
  }
  return out;
}

/** What a token's access claims allow: Granary repository → image in it → actions. */
export type ImageGrants = Map<string, Map<string, Set<Action>>>;

/** The verifier's side of `grant`: the access claims read back, per image. Malformed entries grant nothing. */
export async function grantsFrom(s: Services, access: readonly AccessEntry[]): Promise<ImageGrants> {
  const grants: ImageGrants = new Map();
  for (const e of access) {
    if (e?.type !== 'repository' || typeof e.name !== 'string' || !Array.isArray(e.actions)) continue;
    const target = await imageOf(s, e.name);
    if (!target) continue;
    const images = grants.get(target.repo.name) ?? new Map<string, Set<Action>>();
    const set = images.get(target.image) ?? new Set<Action>();
    for (const a of e.actions) {
      if (a === '*') for (const x of Object.values(ACTION_OF)) set.add(x);
      else if (Object.hasOwn(ACTION_OF, a)) set.add(ACTION_OF[a as keyof typeof ACTION_OF]);
    }
    images.set(target.image, set);
    grants.set(target.repo.name, images);
  }
  return grants;
}

/**
 * A principal's `restrict` for those grants. With an image: exactly what the token grants on that image (the OCI
 * routes ask this once the name is parsed). Without one: whether it grants the action on any image of the
 * repository — all the auth hook can ask before the route knows the image, so only a first filter.
 */
export function restrictTo(grants: ImageGrants): NonNullable<UserPrincipal['restrict']> {
  return (repository, action, image) => {
    const images = grants.get(repository);
    if (!images) return false;
    if (image !== undefined) return images.get(image)?.has(action) ?? false;
    for (const actions of images.values()) if (actions.has(action)) return true;
    return false;
  };
}
