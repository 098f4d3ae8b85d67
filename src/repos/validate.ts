/**
 * What a repository may be: name rules, kind rules (hosted/proxy/group), group membership without cycles,
 * and the format's own options schema. Every error names the field at fault.
 */
import { Ajv } from 'ajv';
import type { RepositoryInput, RepositoryRecord } from '../meta/repos.ts';
import type { TSchema } from '@sinclair/typebox';
import type { FormatPlugin } from '../formats/types.ts';
import { PROXY_OPTIONS_KEY, ProxyOptionsSchema } from './proxy/options.ts';
import { GranaryError } from '../server/errors.ts';

export const REPO_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** Names that would collide with fixed URL segments. */
const RESERVED = new Set(['api', 'v2', 'ui', 'token', 'metrics', 'healthz', 'readyz']);

const ajv = new Ajv({ allErrors: false, strict: false, useDefaults: true });

function invalid(field: string, message: string): GranaryError {
  return new GranaryError('VALIDATION', `${field}: ${message}`, { details: { field } });
}

export function validateName(name: string): void {
  if (!REPO_NAME.test(name)) {
    throw invalid('name', `${JSON.stringify(name)} must be 1-64 characters of a-z, 0-9, ".", "_", "-", starting with a letter or digit`);
  }
  if (RESERVED.has(name)) throw invalid('name', `${JSON.stringify(name)} is reserved`);
}

/**
 * Validates a repository definition against the format and the other repositories.
 * `lookup` finds existing repositories (for group members); `self` is the stored record when updating.
 */
export function validateRepository(
  input: RepositoryInput,
  format: FormatPlugin | undefined,
  lookup: (name: string) => RepositoryRecord | undefined,
): void {
  validateName(input.name);
  if (!format) throw invalid('format', `unknown format ${JSON.stringify(input.format)}`);
  if (!['hosted', 'proxy', 'group'].includes(input.kind)) throw invalid('kind', 'must be hosted, proxy or group');
  if (!format.kinds.includes(input.kind)) {
    throw invalid('kind', `format ${format.name} does not support ${input.kind} repositories (supports ${format.kinds.join(', ')})`);
  }
  const c = input.config;
  if (input.kind !== 'proxy' && c.upstream !== undefined) throw invalid('upstream', 'only proxy repositories have an upstream');
  if (input.kind !== 'group' && (c.members !== undefined || c.writeMember !== undefined)) {
    throw invalid('members', 'only group repositories have members');
  }
  if (input.kind === 'proxy') {
    if (!c.upstream) throw invalid('upstream', 'is required for a proxy repository');
    let u: URL;
    try {
      u = new URL(c.upstream);
    } catch {
      throw invalid('upstream', `${JSON.stringify(c.upstream)} is not a URL`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalid('upstream', 'must be an http or https URL');
    if (u.username || u.password) throw invalid('upstream', 'must not carry credentials; use the upstream auth options');
  }
  if (input.kind === 'group') validateGroup(input, lookup);
  // The proxy settings (options.proxy) are the same for every format: checked here, hidden from the format's schema.
  const proxy = c.options?.[PROXY_OPTIONS_KEY];
  if (proxy !== undefined) {
    if (input.kind !== 'proxy') throw invalid(`options.${PROXY_OPTIONS_KEY}`, 'only proxy repositories have proxy settings');
    checkSchema(ProxyOptionsSchema, proxy, `options.${PROXY_OPTIONS_KEY}`);
  }
  const { [PROXY_OPTIONS_KEY]: _proxy, ...formatOptions } = c.options ?? {};
  if (format.optionsSchema) {
    checkSchema(format.optionsSchema, formatOptions, 'options'); // fills in defaults (useDefaults)
    c.options = proxy === undefined ? formatOptions : { ...formatOptions, [PROXY_OPTIONS_KEY]: proxy };
  } else if (Object.keys(formatOptions).length) {
    throw invalid('options', `format ${format.name} takes no options`);
  }
}

function checkSchema(schema: TSchema, value: unknown, field: string): void {
  const check = ajv.compile(schema);
  if (check(value)) return;
  const e = check.errors![0];
  const where = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const extra = e.keyword === 'additionalProperties' ? `.${String(e.params.additionalProperty)}` : '';
  throw invalid(`${field}${where ? '.' + where : ''}${extra}`, e.keyword === 'additionalProperties' ? 'unknown option' : (e.message ?? 'is invalid'));
}

function validateGroup(input: RepositoryInput, lookup: (name: string) => RepositoryRecord | undefined): void {
  const members = input.config.members ?? [];
  if (!members.length) throw invalid('members', 'a group needs at least one member');
  if (new Set(members).size !== members.length) throw invalid('members', 'lists a repository twice');
  for (const m of members) {
    if (m === input.name) throw invalid('members', `a group cannot contain itself`);
    const r = lookup(m);
    if (!r) throw invalid('members', `unknown repository ${JSON.stringify(m)}`);
    if (r.format !== input.format) throw invalid('members', `${m} is a ${r.format} repository, not ${input.format}`);
  }
  // Cycle check: walk nested groups from each member; reaching this group again is a cycle.
  const done = new Set<string>();
  const visit = (name: string, path: string[]): void => {
    if (name === input.name) throw invalid('members', `cycle: ${[input.name, ...path].join(' → ')}`);
    if (done.has(name)) return;
    done.add(name);
    const r = lookup(name);
    if (!r || r.kind !== 'group') return;
    for (const m of r.config.members ?? []) visit(m, [...path, m]);
  };
  for (const m of members) visit(m, [m]);
  const w = input.config.writeMember;
  if (w !== undefined) {
    if (!members.includes(w)) throw invalid('writeMember', `${JSON.stringify(w)} is not a member`);
    if (lookup(w)?.kind !== 'hosted') throw invalid('writeMember', `${w} is not a hosted repository`);
  }
}
