/**
 * Loads the configuration: defaults ← granary.yaml (or --config / GRANARY_CONFIG) ← GRANARY_* env ← CLI flags,
 * then validates the whole with errors that name the key and what is wrong.
 */
import { readFileSync, existsSync } from 'node:fs';
import { resolve, dirname, isAbsolute } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { Ajv, type ErrorObject } from 'ajv';
import { ConfigSchema, type Config } from './schema.ts';
import { applyEnv } from './env.ts';
import { ConfigError } from './errors.ts';

export { ConfigError } from './errors.ts';
export type { Config, RepositoryDeclaration } from './schema.ts';

export interface LoadOptions {
  /** Explicit config file: must exist. Without it, GRANARY_CONFIG, then ./granary.yaml if present. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Values from CLI flags, highest precedence; keys as in the schema. */
  overrides?: Partial<Config> & Record<string, unknown>;
  /** An in-memory base config instead of a file (tests, embedding). */
  base?: Record<string, unknown>;
  cwd?: string;
}

/** The resolved config: every default filled in and every path absolute. */
export interface ResolvedConfig extends Config {
  /** File the config came from, if any. */
  source?: string;
  database: Config['database'] & { path: string };
  blobs: Config['blobs'] & { path: string };
}

// verbose: errors carry their schema, so a failed union can list the values it allows.
const ajv = new Ajv({ useDefaults: true, allErrors: true, strict: false, verbose: true });
/** Compiled on first use: commands like `--help` never pay for it. */
let compiled: ReturnType<typeof ajv.compile<Config>> | null = null;
const validator = () => (compiled ??= ajv.compile<Config>(ConfigSchema));

/** The error to report: for a value outside a union of literals, the union's error (it lists the allowed values), not its first branch's. */
function pick(errors: ErrorObject[]): ErrorObject {
  const first = errors[0];
  if (first.keyword !== 'const') return first;
  return errors.find((e) => e.keyword === 'anyOf' && e.instancePath === first.instancePath) ?? first;
}

function describe(err: ErrorObject): ConfigError {
  const key = err.instancePath.replace(/^\//, '').replace(/\//g, '.');
  switch (err.keyword) {
    case 'additionalProperties':
      return new ConfigError(
        key ? `${key}.${err.params.additionalProperty}` : String(err.params.additionalProperty),
        'unknown key',
      );
    case 'required':
      return new ConfigError(key ? `${key}.${err.params.missingProperty}` : String(err.params.missingProperty), 'is required');
    case 'anyOf': {
      const allowed = (err.schema as { const?: unknown }[] | undefined)?.map((s) => s.const).filter((v) => v !== undefined);
      return new ConfigError(key, allowed?.length ? `must be one of ${allowed.join(', ')}` : 'has an invalid value');
    }
    default:
      return new ConfigError(key, err.message ?? 'is invalid');
  }
}

function readFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError('', `cannot read ${path}: ${(e as Error).message}`);
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (e) {
    throw new ConfigError('', `${path} is not valid YAML: ${(e as Error).message}`);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new ConfigError('', `${path} must hold a mapping of keys`);
  return data as Record<string, unknown>;
}

function merge(target: Record<string, unknown>, src: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(src)) {
    if (v === undefined) continue;
    const cur = target[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)) {
      merge(cur as Record<string, unknown>, v as Record<string, unknown>);
    } else {
      target[k] = v;
    }
  }
  return target;
}

export function loadConfig(opts: LoadOptions = {}): ResolvedConfig {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  let source: string | undefined;
  let raw: Record<string, unknown> = structuredClone(opts.base ?? {});
  const explicit = opts.file ?? env.GRANARY_CONFIG;
  if (explicit) {
    source = resolve(cwd, explicit);
    if (!existsSync(source)) throw new ConfigError('', `config file ${source} does not exist`);
    raw = merge(raw, readFile(source));
  } else if (!opts.base && existsSync(resolve(cwd, 'granary.yaml'))) {
    source = resolve(cwd, 'granary.yaml');
    raw = merge(raw, readFile(source));
  }
  applyEnv(raw, env);
  if (opts.overrides) merge(raw, opts.overrides as Record<string, unknown>);
  const validate = validator();
  if (!validate(raw)) throw describe(pick(validate.errors!));
  const cfg = raw as Config;
  return resolveConfig(cfg, source ? dirname(source) : cwd, source, cwd);
}

function resolveConfig(cfg: Config, _fileDir: string, source: string | undefined, cwd: string): ResolvedConfig {
  // Paths are relative to the working directory, as `npm start` users expect `./data` to be beside them.
  const dataDir = isAbsolute(cfg.dataDir) ? cfg.dataDir : resolve(cwd, cfg.dataDir);
  if (cfg.baseUrl !== undefined) {
    let u: URL;
    try {
      u = new URL(cfg.baseUrl);
    } catch {
      throw new ConfigError('baseUrl', `${JSON.stringify(cfg.baseUrl)} is not a URL`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError('baseUrl', 'must be http(s)');
    cfg.baseUrl = u.toString().replace(/\/$/, '');
  }
  if (cfg.blobs.driver === 's3' && !cfg.blobs.s3?.bucket) {
    throw new ConfigError('blobs.s3.bucket', 'is required when blobs.driver is s3');
  }
  if (cfg.database.driver === 'postgres' && !cfg.database.url) {
    throw new ConfigError('database.url', 'is required when database.driver is postgres');
  }
  // HTTPS needs both files; one alone is a half-done setup, not a reason to fall back to plain HTTP.
  const { certFile, keyFile } = cfg.tls;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    const [missing, given] = certFile === undefined ? ['tls.certFile', 'tls.keyFile'] : ['tls.keyFile', 'tls.certFile'];
    throw new ConfigError(missing, `is required when ${given} is set (HTTPS needs both)`);
  }
  const names = new Set<string>();
  cfg.repositories.forEach((r, i) => {
    if (names.has(r.name)) throw new ConfigError(`repositories.${i}.name`, `duplicate repository ${r.name}`);
    names.add(r.name);
  });
  return {
    ...cfg,
    source,
    dataDir,
    database: { ...cfg.database, path: resolve(dataDir, cfg.database.path ?? 'granary.db') },
    blobs: { ...cfg.blobs, path: resolve(dataDir, cfg.blobs.path ?? 'blobs') },
    tls: { ...cfg.tls, certFile: certFile && resolve(cwd, certFile), keyFile: keyFile && resolve(cwd, keyFile) },
  };
}
