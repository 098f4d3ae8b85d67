/**
 * docs/api.md documents the whole error catalogue: every code of ERRORS (src/server/errors.ts) has a row in its
 * table with the code's HTTP status, and the table lists no code the catalogue does not have.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { ERRORS } from '../../src/server/errors.ts';

const doc = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');

/** Rows of the form "| `CODE` | 404 | …". */
const rows = new Map([...doc.matchAll(/^\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|/gm)].map((m) => [m[1], Number(m[2])]));

it('docs/api.md has a row for every error code, with its status', () => {
  const problems: string[] = [];
  for (const [code, { status }] of Object.entries(ERRORS)) {
    if (!rows.has(code)) problems.push(`${code} is missing`);
    else if (rows.get(code) !== status) problems.push(`${code} is documented as ${rows.get(code)}, the catalogue says ${status}`);
  }
  assert.deepEqual(problems, [], `docs/api.md: ${problems.join('; ')}`);
});

it('docs/api.md lists no code the catalogue lacks', () => {
  const stale = [...rows.keys()].filter((code) => !(code in ERRORS));
  assert.deepEqual(stale, [], `documented but not in ERRORS: ${stale.join(', ')}`);
});
