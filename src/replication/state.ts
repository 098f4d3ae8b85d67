/**
 * A checksum of what a node serves — repositories, every (repository, path, digest) and every tag — equal on a
 * primary and a replica that has caught up. It is a multiset hash (the sum of the SHA-256 of each line, modulo
 * 2^256), which equals a hash over the sorted lines in what it proves but needs no global sort: collation
 * differs between SQLite and PostgreSQL, and the tables are read in pages.
 */
import { createHash } from 'node:crypto';
import picomatch from 'picomatch';
import type { Db } from '../meta/db.ts';

export interface StateSummary {
  checksum: string;
  repositories: number;
  assets: number;
  tags: number;
}

const MOD = 1n << 256n;
const PAGE = 1000;

export async function stateChecksum(db: Db, globs: string[] = ['**']): Promise<StateSummary> {
  const inScope = picomatch(globs.length ? globs : ['**']);
  let sum = 0n;
  const add = (...fields: (string | number)[]) => {
    sum = (sum + BigInt('0x' + createHash('sha256').update(fields.join('\t')).digest('hex'))) % MOD;
  };
  const repos = (await db.selectFrom('repositories').select(['id', 'name', 'format', 'kind']).execute()).filter((r) => inScope(r.name));
  let assets = 0;
  let tags = 0;
  for (const r of repos) {
    add('R', r.name, r.format, r.kind);
    for (let after = 0; ; ) {
      const rows = await db.selectFrom('assets').select(['id', 'path', 'digest']).where('repo_id', '=', r.id).where('id', '>', after).orderBy('id').limit(PAGE).execute();
      for (const a of rows) add('A', r.name, a.path, a.digest);
      assets += rows.length;
      if (rows.length < PAGE) break;
      after = Number(rows[rows.length - 1].id);
    }
    for (let after = 0; ; ) {
      const rows = await db.selectFrom('tags').select(['id', 'scope', 'name', 'target']).where('repo_id', '=', r.id).where('id', '>', after).orderBy('id').limit(PAGE).execute();
      for (const t of rows) add('T', r.name, t.scope, t.name, t.target);
      tags += rows.length;
      if (rows.length < PAGE) break;
      after = Number(rows[rows.length - 1].id);
    }
  }
  const checksum = createHash('sha256').update(`${sum.toString(16).padStart(64, '0')}|${repos.length}|${assets}|${tags}`).digest('hex');
  return { checksum: `sha256:${checksum}`, repositories: repos.length, assets, tags };
}
