/**
 * docs/configuration.md documents every setting: each GRANARY_* variable the schema accepts (envKeys()) and each
 * key path must appear in it, so a new key cannot ship undocumented.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { envKeys } from '../../src/config/env.ts';

const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');

it('docs/configuration.md names every GRANARY_* variable', () => {
  const keys = envKeys();
  assert.ok(keys.length > 20, 'envKeys() lists the schema');
  // Whole-word match: GRANARY_AUTH_ADMIN_TOKEN must not count as GRANARY_ADMIN_TOKEN's entry, nor the reverse.
  const missing = keys.filter((k) => !new RegExp(`\`${k.name}\``).test(doc)).map((k) => k.name);
  assert.deepEqual(missing, [], `missing from docs/configuration.md: ${missing.join(', ')}`);
});

it('docs/configuration.md names every key path', () => {
  const missing = [...new Set(envKeys().map((k) => k.path.join('.')))].filter((p) => !doc.includes(`\`${p}\``));
  assert.deepEqual(missing, [], `missing from docs/configuration.md: ${missing.join(', ')}`);
});
