/**
 * Repository management: create, update, delete and look up repositories, with validation, for the API, the
 * CLI's local mode and the config file's declarations alike.
 */
import type { MetaDb } from '../meta/db.ts';
import { withTx } from '../meta/db.ts';
import {
  deleteRepository,
  getRepository,
  insertRepository,
  listRepositories,
  updateRepository,
  type RepositoryConfig,
  type RepositoryInput,
  type RepositoryRecord,
} from '../meta/repos.ts';
import type { RepoKind } from '../meta/tables.ts';
import type { FormatPlugin } from '../formats/types.ts';
import type { RepositoryDeclaration } from '../config/load.ts';
import { ConfigError } from '../config/errors.ts';
import { GranaryError } from '../server/errors.ts';
import { validateRepository } from './validate.ts';
import { keepRedactedSecrets } from './proxy/options.ts';
import { TtlCache } from '../util/ttl-cache.ts';

/** How long a repository lookup is reused when it was changed by another process. */
export const REPO_CACHE_MS = 5_000;

export interface CreateRepositoryInput {
  name: string;
  format: string;
  kind?: RepoKind;
  anonymousRead?: boolean;
  upstream?: string;
  members?: string[];
  writeMember?: string;
  options?: Record<string, unknown>;
}

export interface UpdateRepositoryInput {
  anonymousRead?: boolean;
  upstream?: string;
  members?: string[];
  writeMember?: string;
  options?: Record<string, unknown>;
}

function configOf(i: { upstream?: string; members?: string[]; writeMember?: string; options?: Record<string, unknown> }): RepositoryConfig {
  const c: RepositoryConfig = {};
  if (i.upstream !== undefined) c.upstream = i.upstream;
  if (i.members !== undefined) c.members = [...i.members];
  if (i.writeMember !== undefined) c.writeMember = i.writeMember;
  if (i.options !== undefined) c.options = structuredClone(i.options);
  return c;
}

export class RepoService {
  readonly #meta: MetaDb;
  readonly #formats: (name: string) => FormatPlugin | undefined;
  readonly #defaultAnonymousRead: boolean;
  /** Every request resolves its repository by name; changes made here clear it at once. */
  readonly #byName = new TtlCache<string, RepositoryRecord | null>({ ttlMs: REPO_CACHE_MS, max: 10_000 });

  constructor(meta: MetaDb, formats: (name: string) => FormatPlugin | undefined, opts: { defaultAnonymousRead: boolean }) {
    this.#meta = meta;
    this.#formats = formats;
    this.#defaultAnonymousRead = opts.defaultAnonymousRead;
  }

  async get(name: string): Promise<RepositoryRecord | null> {
    const hit = this.#byName.get(name);
    if (hit !== undefined) return hit;
    const r = await getRepository(this.#meta.db, name);
    this.#byName.set(name, r);
    return r;
  }

  /** Forgets cached lookups (after changes made by another process, e.g. a replica applying a feed). */
  invalidate(): void {
    this.#byName.clear();
  }

  list(opts: { format?: string } = {}): Promise<RepositoryRecord[]> {
    return listRepositories(this.#meta.db, opts);
  }

  async #lookup(): Promise<(name: string) => RepositoryRecord | undefined> {
    const all = new Map((await this.list()).map((r) => [r.name, r]));
    return (n) => all.get(n);
  }

  async create(i: CreateRepositoryInput, actor: string | null): Promise<RepositoryRecord> {
    const input: RepositoryInput = {
      name: i.name,
      format: i.format,
      kind: i.kind ?? 'hosted',
      anonymousRead: i.anonymousRead ?? this.#defaultAnonymousRead,
      config: configOf(i),
    };
    const lookup = await this.#lookup();
    if (lookup(input.name)) throw new GranaryError('CONFLICT', `repository ${input.name} already exists`);
    validateRepository(input, this.#formats(input.format), lookup);
    try {
      const created = await withTx(this.#meta.db, (tx) => insertRepository(tx, input, actor));
      this.invalidate();
      return created;
    } catch (e) {
      this.invalidate();
      // A concurrent create of the same name loses on the unique constraint.
      if (await this.get(input.name)) throw new GranaryError('CONFLICT', `repository ${input.name} already exists`);
      throw e;
    }
  }

  /** Changes a repository; `replace` makes the patch the whole config (declarations) instead of a merge. */
  async update(name: string, patch: UpdateRepositoryInput, actor: string | null, opts: { replace?: boolean } = {}): Promise<RepositoryRecord> {
    const lookup = await this.#lookup();
    const cur = lookup(name);
    if (!cur) throw new GranaryError('REPOSITORY_UNKNOWN', `repository ${name} not found`);
    // The API shows upstream secrets as "***"; a read-modify-write sends that back, meaning "unchanged".
    if (patch.options !== undefined) patch = { ...patch, options: keepRedactedSecrets(patch.options, cur.config.options) };
    const config: RepositoryConfig = opts.replace ? configOf(patch) : { ...cur.config, ...configOf(patch) };
    const input: RepositoryInput = {
      name,
      format: cur.format,
      kind: cur.kind,
      anonymousRead: patch.anonymousRead ?? cur.anonymousRead,
      config,
    };
    validateRepository(input, this.#formats(cur.format), lookup);
    if (input.anonymousRead === cur.anonymousRead && JSON.stringify(config) === JSON.stringify(cur.config)) return cur;
    const r = await withTx(this.#meta.db, (tx) =>
      updateRepository(tx, name, { anonymousRead: input.anonymousRead, config: input.config }, actor),
    );
    this.invalidate();
    return r!;
  }

  async remove(name: string, actor: string | null): Promise<void> {
    const all = await this.list();
    const users = all.filter((r) => r.kind === 'group' && r.config.members?.includes(name));
    if (users.length) {
      throw new GranaryError('CONFLICT', `repository ${name} is a member of ${users.map((u) => u.name).join(', ')}; remove it there first`);
    }
    const ok = await withTx(this.#meta.db, (tx) => deleteRepository(tx, name, actor));
    this.invalidate();
    if (!ok) throw new GranaryError('REPOSITORY_UNKNOWN', `repository ${name} not found`);
  }

  /**
   * Applies the config file's repositories: creates the missing, updates the changed, leaves the rest.
   * Idempotent: a second start with the same file changes nothing and appends no event. Groups are applied
   * after the repositories they name, whatever the file's order.
   */
  async applyDeclarations(decls: RepositoryDeclaration[]): Promise<void> {
    const pending = decls.map((d, i) => ({ d, i }));
    let progress = true;
    while (pending.length && progress) {
      progress = false;
      for (let k = 0; k < pending.length; k++) {
        const { d, i } = pending[k];
        const known = await this.#lookup();
        const waitsFor = (d.members ?? []).filter((m) => !known(m) && decls.some((o) => o.name === m));
        if (waitsFor.length) continue;
        await this.#applyOne(d, i, known(d.name));
        pending.splice(k--, 1);
        progress = true;
      }
    }
    if (pending.length) {
      const { d, i } = pending[0];
      throw new ConfigError(`repositories.${i}.members`, `cycle among declared groups involving ${d.name}`);
    }
  }

  async #applyOne(d: RepositoryDeclaration, i: number, existing: RepositoryRecord | undefined): Promise<void> {
    try {
      if (!existing) {
        await this.create({ ...d, kind: d.kind ?? 'hosted' }, 'config');
        return;
      }
      if (existing.format !== d.format || existing.kind !== (d.kind ?? 'hosted')) {
        throw new ConfigError(
          `repositories.${i}`,
          `repository ${d.name} exists as ${existing.kind} ${existing.format}; the config says ${d.kind ?? 'hosted'} ${d.format} (delete it first to change its kind or format)`,
        );
      }
      await this.update(d.name, { anonymousRead: d.anonymousRead, upstream: d.upstream, members: d.members, writeMember: d.writeMember, options: d.options }, 'config', { replace: true });
    } catch (e) {
      if (e instanceof GranaryError) {
        const field = (e.details as { field?: string } | undefined)?.field;
        throw new ConfigError(`repositories.${i}${field ? '.' + field : ''}`, e.message);
      }
      throw e;
    }
  }
}
