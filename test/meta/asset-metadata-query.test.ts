/**
 * listAssets' metadata filter runs in SQL on SQLite and on PostgreSQL alike, with the rule it had in JavaScript:
 * `String(stored) === String(wanted)` on scalars (numbers by their JSON spelling, true/false/null by those words);
 * a missing key, an array or an object never matches. Pages hold only matches, so one page is one query.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { KyselyPlugin } from 'kysely';
import { openDb, withTx, type Db, type MetaDb } from '../../src/meta/db.ts';
import { insertRepository } from '../../src/meta/repos.ts';
import { listAssets, type AssetQuery } from '../../src/meta/assets.ts';
import { createTestDatabase, type TestPg } from '../helpers/pg.ts';

/** Each dialect: a fresh database, or the reason it is skipped. */
const DIALECTS: Record<'sqlite' | 'postgres', () => Promise<{ meta: MetaDb; pg?: TestPg } | string>> = {
  sqlite: async () => ({ meta: await openDb({ driver: 'sqlite', path: ':memory:' }) }),
  postgres: async () => {
    const pg = await createTestDatabase();
    return typeof pg === 'string' ? pg : { meta: await openDb({ driver: 'postgres', url: pg.url, poolSize: 2 }), pg };
  },
};

const only = process.env.GRANARY_TEST_DIALECTS?.split(',');
for (const [name, open] of Object.entries(DIALECTS).filter(([n]) => !only || only.includes(n))) {
  const ready = await open();
  describe(`asset metadata queries (${name})`, { skip: typeof ready === 'string' ? ready : false }, () => {
    if (typeof ready !== 'string') suite(ready);
  });
}

/** `db` seen through a plugin that counts the statements run on it. */
function counting(db: Db): { db: Db; count(): number } {
  let n = 0;
  const plugin: KyselyPlugin = {
    transformQuery: (args) => args.node,
    transformResult: async (args) => (n++, args.result),
  };
  return { db: db.withPlugin(plugin), count: () => n };
}

/** The old JavaScript rule, narrowed to scalars: the oracle every SQL answer is checked against. */
function matches(metadata: Record<string, unknown>, want: NonNullable<AssetQuery['metadata']>): boolean {
  return Object.entries(want).every(([k, v]) => {
    const x = Object.hasOwn(metadata, k) ? metadata[k] : undefined;
    return x !== undefined && (x === null || typeof x !== 'object') && String(x) === String(v);
  });
}

function suite(env: { meta: MetaDb; pg?: TestPg }) {
  const db = env.meta.db;
  after(async () => {
    await env.meta.close();
    await env.pg?.drop();
  });

  let repos = 0;
  /** A new repository holding these assets (inserted in bulk: the rows are what is under test, not putAsset). */
  async function repoWith(assets: { path: string; digest?: string; metadata: Record<string, unknown> }[]): Promise<number> {
    const repo = await withTx(db, (tx) => insertRepository(tx, { name: `r${++repos}`, format: 'generic', kind: 'hosted', anonymousRead: false, config: {} }, null));
    const t = new Date().toISOString();
    for (let i = 0; i < assets.length; i += 500) {
      const rows = assets.slice(i, i + 500).map((a) => ({
        repo_id: repo.id,
        path: a.path,
        digest: a.digest ?? 'sha256:' + '0'.repeat(64),
        size: 1,
        media_type: null,
        metadata: JSON.stringify(a.metadata),
        created_at: t,
        updated_at: t,
      }));
      await db.insertInto('assets').values(rows).execute();
    }
    return repo.id;
  }
  const paths = async (q: AssetQuery) => (await listAssets(db, q)).map((a) => a.path);

  describe('which values match', () => {
    const values: Record<string, unknown> = {
      one: 1, oneText: '1', oneHalf: 1.5, sum: 0.1 + 0.2, huge: 1e21, tiny: 1e-7, negZero: -0, negative: -42, big: 12345678901234567000,
      yes: true, yesText: 'true', no: false, nul: null, nulText: 'null', empty: '', text: 'linux', unicode: 'ünïcødé 😀', quoted: 'a"b\\c', nulChar: 'a\u0000b', notNul: '\\u0000',
      arr: ['linux'], arrEmpty: [], arrMany: [1, 2], obj: { a: 1 }, objEmpty: {},
    };
    let repoId: number;
    before(async () => {
      repoId = await repoWith([...Object.entries(values).map(([path, v]) => ({ path, metadata: { v } })), { path: 'none', metadata: {} }]);
    });

    it('compares scalars as String() renders them: strings, numbers by their JSON spelling, true/false/null', async () => {
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: 1 } }), ['one', 'oneText']);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: '1' } }), ['one', 'oneText']);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: '1.0' } }), []);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: 1.5 } }), ['oneHalf']);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: 0.1 + 0.2 } }), ['sum']);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: '0.3' } }), [], 'not SQL real rendering');
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: '1e+21' } }), ['huge']);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: '1000000000000000000000' } }), [], 'not jsonb numeric rendering');
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: 1e-7 } }), ['tiny']);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: 0 } }), ['negZero']);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: -42 } }), ['negative']);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: true } }), ['yes', 'yesText']);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: 'false' } }), ['no']);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: 'null' } }), ['nul', 'nulText']);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: '' } }), ['empty'], 'an empty array is not ""');
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: 'ünïcødé 😀' } }), ['unicode']);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: 'a"b\\c' } }), ['quoted']);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: 'a\u0000b' } }), ['nulChar']);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: '\\u0000' } }), ['notNul'], 'a backslash and "u0000" is no U+0000');
    });

    it('never matches a missing key, an array or an object', async () => {
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: 'linux' } }), ['text'], 'not ["linux"]');
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: '1,2' } }), []);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: '[object Object]' } }), []);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: '{"a":1}' } }), []);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: '[1,2]' } }), []);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: 'undefined' } }), []);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { absent: 'undefined' } }), []);
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { constructor: 'x', toString: 'y' } }), []);
    });

    it('agrees with the JavaScript rule for every stored value and every rendering of it', async () => {
      const wants = [...Object.values(values).filter((v) => v === null || typeof v !== 'object').map(String), 'undefined', '[object Object]', 'linux'];
      for (const want of wants) {
        const expected = Object.entries(values).filter(([, v]) => matches({ v }, { v: want })).map(([p]) => p);
        assert.deepEqual(await paths({ repoIds: [repoId], metadata: { v: want } }), expected, `v=${want}`);
      }
    });
  });

  it('reads keys literally: dots, quotes, backslashes, $, unicode, empty', async () => {
    const keys = ['a.b', 'q"t', "s'q", 'k\\b', '$.x', '$', '[0]', 'ключ 😀', '', 'nul\u0000', 'a'];
    const repoId = await repoWith([
      ...keys.map((k, i) => ({ path: `k${i}`, metadata: { [k]: 'hit' } })),
      { path: 'nested', metadata: { a: { b: 'hit' }, x: 'hit', $: { x: 'hit' } } },
    ]);
    for (const [i, k] of keys.entries()) {
      assert.deepEqual(await paths({ repoIds: [repoId], metadata: { [k]: 'hit' } }), [`k${i}`], `key ${JSON.stringify(k)}`);
    }
  });

  it('a U+0000 anywhere in a row\'s metadata breaks no search', async () => {
    const repoId = await repoWith([
      { path: 'nul', metadata: { os: 'linux', note: 'x\u0000y', ['k\u0000']: 1 } },
      { path: 'plain', metadata: { os: 'linux' } },
      { path: 'other', metadata: { os: 'windows', note: '\u0000' } },
    ]);
    assert.deepEqual(await paths({ repoIds: [repoId], metadata: { os: 'linux' } }), ['nul', 'plain']);
    assert.deepEqual(await paths({ repoIds: [repoId], metadata: { note: '\u0000' } }), ['other']);
  });

  it('ands several filters together, with prefix and digest', async () => {
    const d1 = 'sha256:' + '1'.repeat(64);
    const d2 = 'sha256:' + '2'.repeat(64);
    const repoId = await repoWith([
      { path: 'p/a', digest: d1, metadata: { os: 'linux', arch: 'x86_64', pluginVersion: 1 } },
      { path: 'p/b', digest: d2, metadata: { os: 'linux', arch: 'aarch64', pluginVersion: 1 } },
      { path: 'p/c', digest: d1, metadata: { os: 'linux', arch: 'x86_64', pluginVersion: 2 } },
      { path: 'q/d', digest: d1, metadata: { os: 'linux', arch: 'x86_64', pluginVersion: '1' } },
      { path: 'p/e', digest: d1, metadata: { os: 'windows', arch: 'x86_64', pluginVersion: 1 } },
    ]);
    const want = { os: 'linux', arch: 'x86_64', pluginVersion: 1 };
    assert.deepEqual(await paths({ repoIds: [repoId], metadata: want }), ['p/a', 'q/d']);
    assert.deepEqual(await paths({ repoIds: [repoId], metadata: want, prefix: 'p/' }), ['p/a']);
    assert.deepEqual(await paths({ repoIds: [repoId], metadata: want, digest: d1 }), ['p/a', 'q/d']);
    assert.deepEqual(await paths({ repoIds: [repoId], metadata: { os: 'linux' }, digest: d2 }), ['p/b']);
    assert.deepEqual(await paths({ repoIds: [repoId], metadata: { os: 'linux' }, digest: d2, prefix: 'q/' }), []);
    assert.deepEqual(await paths({ repoIds: [], metadata: want }), []);
  });

  it('pages through 2,500 rows, every third matching: full pages, id order, one query each', async () => {
    const repoId = await repoWith(Array.from({ length: 2500 }, (_, i) => ({ path: `f${i}`, metadata: { os: i % 3 === 0 ? 'linux' : 'windows', i } })));
    const c = counting(db);
    const seen: number[] = [];
    const sizes: number[] = [];
    let afterId = 0;
    for (;;) {
      const page = await listAssets(c.db, { repoIds: [repoId], metadata: { os: 'linux' }, afterId, limit: 100 });
      sizes.push(page.length);
      seen.push(...page.map((a) => a.metadata.i as number));
      if (page.length < 100) break;
      assert.ok(page.every((a, j) => j === 0 || a.id > page[j - 1].id), 'ids ascend within a page');
      assert.ok(page[0].id > afterId, 'a page continues after afterId');
      afterId = page[page.length - 1].id;
    }
    assert.deepEqual(sizes, [...Array(8).fill(100), 34]);
    assert.deepEqual(seen, Array.from({ length: 834 }, (_, j) => j * 3));
    assert.equal(c.count(), sizes.length, 'one query per page');
  });

  it('answers [] over 20,000 non-matching rows with one query', async () => {
    const repoId = await repoWith(Array.from({ length: 20_000 }, (_, i) => ({ path: `n${i}`, metadata: { os: 'windows', i } })));
    const c = counting(db);
    assert.deepEqual(await listAssets(c.db, { repoIds: [repoId], metadata: { os: 'linux' }, limit: 100 }), []);
    assert.equal(c.count(), 1);
  });
}
