/**
 * GRANARY_* environment overrides, derived from the schema: every leaf key `a.bC` is `GRANARY_A_B_C`.
 * Arrays and records are given as JSON. A few short aliases exist because operators and scripts rely on them.
 */
import type { TSchema } from '@sinclair/typebox';
import { ConfigSchema } from './schema.ts';
import { ConfigError } from './errors.ts';

/** Short names kept for scripts: they map onto a schema path. */
const ALIASES: Record<string, string[]> = {
  GRANARY_ADMIN_TOKEN: ['auth', 'adminToken'],
};

interface EnvKey {
  name: string;
  path: string[];
  schema: TSchema;
}

function snake(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** Every environment variable the schema accepts, with its path. */
export function envKeys(): EnvKey[] {
  const out: EnvKey[] = [];
  const walk = (schema: TSchema, path: string[]) => {
    if (schema.type === 'object' && schema.properties) {
      for (const [k, sub] of Object.entries(schema.properties as Record<string, TSchema>)) walk(sub, [...path, k]);
      return;
    }
    out.push({ name: 'GRANARY_' + path.map(snake).join('_'), path, schema });
  };
  walk(ConfigSchema, []);
  for (const [name, path] of Object.entries(ALIASES)) {
    const found = out.find((k) => k.path.join('.') === path.join('.'));
    if (found) out.push({ name, path, schema: found.schema });
  }
  return out;
}

function coerce(key: EnvKey, raw: string): unknown {
  const t = key.schema.type;
  const isLiteralUnion = Array.isArray(key.schema.anyOf);
  if (t === 'integer' || t === 'number') {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw new ConfigError(key.path.join('.'), `${key.name}=${JSON.stringify(raw)} is not a number`);
    return n;
  }
  if (t === 'boolean') {
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    throw new ConfigError(key.path.join('.'), `${key.name}=${JSON.stringify(raw)} is not a boolean (true/false)`);
  }
  if (t === 'array' || t === 'object') {
    try {
      return JSON.parse(raw);
    } catch {
      throw new ConfigError(key.path.join('.'), `${key.name} must be JSON`);
    }
  }
  if (isLiteralUnion || t === 'string') return raw;
  return raw;
}

/** Applies the environment onto a plain config object (mutates and returns it). */
export function applyEnv(target: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  for (const key of envKeys()) {
    const raw = env[key.name];
    // `GRANARY_X=` (set but empty) means "not set", as in most shells' and tools' conventions.
    if (raw === undefined || raw === '') continue;
    let node = target;
    for (const seg of key.path.slice(0, -1)) {
      if (typeof node[seg] !== 'object' || node[seg] === null) node[seg] = {};
      node = node[seg] as Record<string, unknown>;
    }
    node[key.path[key.path.length - 1]] = coerce(key, raw);
  }
  return target;
}
