/**
 * storeAsset's create-only mode and sibling assets: derived files are bound in the same transaction as the upload,
 * so they appear with it, and vanish with it when the path turns out to be taken — however the race is run.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { storeAsset } from '../../src/repos/content.ts';
import { getAsset } from '../../src/meta/assets.ts';
import { GranaryError } from '../../src/server/errors.ts';
import type { RepositoryRecord } from '../../src/meta/repos.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

describe('storeAsset: ifAbsent and siblings', () => {
  let s: TestServer;
  let repo: RepositoryRecord;
  before(async () => {
    s = await startServer();
    repo = await s.services.repos.create({ name: 'rel', format: 'generic' }, 'test');
  });
  after(() => s?.close());

  /** Stores `main` create-only, with one derived sibling whose bytes say who made it. */
  const publish = async (main: string, who: string) => {
    const sib = await s.services.blobs.put(Readable.from([Buffer.from(`derived by ${who}`)]));
    return storeAsset(s.services, repo, { path: main, data: Readable.from([Buffer.from(who)]), ifAbsent: true, siblings: () => [{ path: `${main}.derived`, digest: sib.digest, size: sib.size }] }, who);
  };
  const text = async (path: string) => {
    const a = await getAsset(s.services.meta.db, repo.id, path);
    if (!a) return null;
    const chunks: Buffer[] = [];
    for await (const c of await s.services.blobs.open(a.digest)) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString();
  };

  it('binds the siblings with the asset', async () => {
    await publish('v1', 'first');
    assert.equal(await text('v1'), 'first');
    assert.equal(await text('v1.derived'), 'derived by first');
  });

  it('a second create of the path is CONFLICT and leaves the first publish and its siblings untouched', async () => {
    await assert.rejects(publish('v1', 'second'), (e: unknown) => e instanceof GranaryError && e.code === 'CONFLICT');
    assert.equal(await text('v1'), 'first');
    assert.equal(await text('v1.derived'), 'derived by first');
  });

  it('of many racing creates exactly one wins, and the siblings are the winner’s', async () => {
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => publish('v2', `racer-${i}`)));
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    assert.equal(won.length, 1, JSON.stringify(results.map((r) => r.status)));
    assert.equal(await text('v2'), `racer-${won[0]}`);
    assert.equal(await text('v2.derived'), `derived by racer-${won[0]}`);
  });
});
