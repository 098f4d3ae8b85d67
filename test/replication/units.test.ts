/** The pure pieces of replication: canonical JSON (both sides must hash the same bytes) and which blobs a page needs. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalJson, chainOver, GENESIS, toFeedEvent, type FeedEvent } from '../../src/replication/feed-format.ts';
import { blobsNeeded } from '../../src/replication/apply.ts';

const D = (c: string) => 'sha256:' + c.repeat(64);
const ev = (seq: number, kind: string, repo: string, path: string | null, digest: string | null, data: Record<string, unknown> | null = null): FeedEvent => ({
  seq,
  at: '2026-11-23T00:00:00.000Z',
  kind,
  repo,
  path,
  digest,
  actor: null,
  data,
});

describe('canonical JSON', () => {
  it('sorts keys at every level, keeps array order, drops undefined', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [3, { y: 1, x: 2 }], c: null }, u: undefined }), '{"a":{"c":null,"d":[3,{"x":2,"y":1}]},"b":1}');
    assert.equal(canonicalJson('é"'), JSON.stringify('é"'));
    assert.throws(() => canonicalJson({ n: Number.NaN }), /non-finite/);
  });

  it('makes the chain independent of key order and sensitive to every field', () => {
    const e = ev(1, 'asset.put', 'r', 'p', D('a'), { size: 1, mediaType: null });
    const reordered = JSON.parse('{"data":{"mediaType":null,"size":1},"digest":"' + D('a') + '","actor":null,"path":"p","repo":"r","kind":"asset.put","at":"2026-11-23T00:00:00.000Z","seq":1}') as FeedEvent;
    assert.equal(chainOver(GENESIS, [e]), chainOver(GENESIS, [reordered]));
    assert.notEqual(chainOver(GENESIS, [e]), chainOver(GENESIS, [{ ...e, data: { size: 2, mediaType: null } }]));
  });
});

describe('toFeedEvent', () => {
  it('drops inline credentials from repository configuration, keeps the rest', () => {
    const auth = { type: 'basic', username: 'u', password: 'p4ss', passwordEnv: 'UPSTREAM_PW' };
    const e = toFeedEvent(ev(1, 'repository.created', 'r', null, null, { format: 'oci', kind: 'proxy', config: { upstream: 'https://x', options: { proxy: { auth } } } }));
    assert.deepEqual(e.data, { format: 'oci', kind: 'proxy', config: { upstream: 'https://x', options: { proxy: { auth: { type: 'basic', username: 'u', passwordEnv: 'UPSTREAM_PW' } } } } });
    const asset = ev(2, 'asset.put', 'r', 'p', D('a'), { size: 1, metadata: { token: 'content, not a secret' } });
    assert.deepEqual(toFeedEvent(asset).data, asset.data);
  });
});

describe('blobsNeeded', () => {
  it('lists the blobs of assets the page leaves bound, not those replaced or deleted within it', () => {
    const page = [
      ev(1, 'asset.put', 'r', 'a', D('1'), { size: 10 }),
      ev(2, 'asset.put', 'r', 'b', D('2'), { size: 20 }),
      ev(3, 'asset.deleted', 'r', 'b', D('2')),
      ev(4, 'asset.put', 'r', 'a', D('3'), { size: 30 }),
      ev(5, 'asset.put', 'gone', 'x', D('4'), { size: 40 }),
      ev(6, 'repository.deleted', 'gone', null, null),
      ev(7, 'tag.set', 'r', 'img:v1', D('3'), { scope: 'img', tag: 'v1', target: D('3') }),
    ];
    assert.deepEqual([...blobsNeeded(page)], [[D('3'), 30]]);
  });
});
