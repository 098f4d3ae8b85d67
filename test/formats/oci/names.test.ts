import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { OCI_ERRORS, OCI_ERROR_CODES, OciError, isOciErrorCode, ociErrorBody, ociErrorsStatus } from '../../../src/formats/oci/errors.ts';
import {
  NAME_MAX_LENGTH,
  assertValidDigest,
  assertValidName,
  isValidDigest,
  isValidName,
  isValidTag,
  isWellFormedButUnsupportedDigest,
  parseReference,
  referrersTagFor,
  splitV2Path,
} from '../../../src/formats/oci/names.ts';

const D256 = `sha256:${'a'.repeat(64)}`;
const D512 = `sha512:${'b'.repeat(128)}`;

function throwsOci(fn: () => unknown, code: string, status?: number): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof OciError, `expected OciError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (status !== undefined) assert.equal(e.status, status);
    return true;
  });
}

describe('errors catalogue', () => {
  test('has every spec code plus RANGE_INVALID, with the conventional statuses', () => {
    const expected: Record<string, number> = {
      BLOB_UNKNOWN: 404,
      BLOB_UPLOAD_INVALID: 400,
      BLOB_UPLOAD_UNKNOWN: 404,
      DIGEST_INVALID: 400,
      MANIFEST_BLOB_UNKNOWN: 404,
      MANIFEST_INVALID: 400,
      MANIFEST_UNKNOWN: 404,
      NAME_INVALID: 400,
      NAME_UNKNOWN: 404,
      SIZE_INVALID: 400,
      UNAUTHORIZED: 401,
      DENIED: 403,
      UNSUPPORTED: 405,
      TOOMANYREQUESTS: 429,
      RANGE_INVALID: 416,
      PAGINATION_NUMBER_INVALID: 400,
    };
    for (const [code, status] of Object.entries(expected)) {
      assert.ok(isOciErrorCode(code), code);
      assert.equal(OCI_ERRORS[code as keyof typeof OCI_ERRORS].status, status, code);
    }
    assert.deepEqual([...OCI_ERROR_CODES].sort(), Object.keys(expected).sort());
  });

  test('codes are upper-case letters and underscores only (spec)', () => {
    for (const code of OCI_ERROR_CODES) assert.match(code, /^[A-Z_]+$/);
    for (const code of OCI_ERROR_CODES) assert.ok(OCI_ERRORS[code].message.length > 0 && OCI_ERRORS[code].description.length > 0);
  });

  test('OciError defaults message and status; overrides work', () => {
    const e = new OciError('BLOB_UNKNOWN');
    assert.equal(e.message, 'blob unknown to registry');
    assert.equal(e.status, 404);
    assert.equal(e.detail, undefined);
    assert.ok(e instanceof Error);
    const big = new OciError('MANIFEST_INVALID', 'too big', { limit: 1 }, 413);
    assert.equal(big.status, 413);
    assert.deepEqual(big.detail, { limit: 1 });
  });

  test('ociErrorBody builds the envelope, omitting absent detail', () => {
    assert.deepEqual(ociErrorBody(new OciError('NAME_UNKNOWN')), {
      errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }],
    });
    const many = [new OciError('MANIFEST_BLOB_UNKNOWN', undefined, { digest: D256 }), new OciError('MANIFEST_BLOB_UNKNOWN', 'x', { digest: D512 })];
    const body = ociErrorBody(many);
    assert.equal(body.errors.length, 2);
    assert.deepEqual(body.errors[1], { code: 'MANIFEST_BLOB_UNKNOWN', message: 'x', detail: { digest: D512 } });
    assert.equal(ociErrorsStatus(many), 404);
    assert.equal(ociErrorsStatus([]), 500);
    assert.deepEqual(JSON.parse(JSON.stringify(body)), body);
  });
});

describe('repository names', () => {
  const good = [
    'a',
    'library/ubuntu',
    'a/b/c/d/e',
    'foo.bar',
    'foo_bar',
    'foo__bar',
    'foo-bar',
    'foo---bar',
    'a0/b1-c2.d3_e4__f5',
    '0',
    'blobs',
    'a/blobs/b',
    'x/manifests/y',
    'tags/list/x',
    'a'.repeat(NAME_MAX_LENGTH),
  ];
  const bad = [
    '',
    'A',
    'Library/ubuntu',
    'foo/',
    '/foo',
    'foo//bar',
    'foo/../bar',
    '..',
    '.',
    'foo/./bar',
    'foo.',
    '.foo',
    'foo..bar',
    'foo___bar',
    'foo_-bar',
    'foo.-bar',
    '-foo',
    'foo-',
    '_foo',
    'foo bar',
    'foo:bar',
    'foo@bar',
    'foo%2fbar',
    'ünicode',
    'a'.repeat(NAME_MAX_LENGTH + 1),
    'foo\nbar',
  ];
  for (const n of good) test(`accepts ${JSON.stringify(n.length > 40 ? `${n.slice(0, 10)}…(${n.length})` : n)}`, () => assert.ok(isValidName(n)));
  for (const n of bad) {
    test(`rejects ${JSON.stringify(n.length > 40 ? `${n.slice(0, 10)}…(${n.length})` : n)}`, () => {
      assert.ok(!isValidName(n));
      throwsOci(() => assertValidName(n), 'NAME_INVALID', 400);
    });
  }
  test('the NAME_INVALID detail names the reason', () => {
    try {
      assertValidName('Foo/bar');
      assert.fail('no throw');
    } catch (e) {
      assert.ok(e instanceof OciError);
      assert.match(e.message, /upper-case/);
      assert.deepEqual(e.detail, { name: 'Foo/bar' });
    }
    assert.throws(() => assertValidName('a//b'), /empty path component/);
    assert.throws(() => assertValidName('a/../b'), /"\.\."/);
    assert.throws(() => assertValidName('a'.repeat(300)), /longer than 255/);
  });
});

describe('tags, digests, references', () => {
  test('tags', () => {
    for (const t of ['latest', 'v1.0.0', '_x', '1', 'A-b_c.d', 'a'.repeat(128), `sha256-${'a'.repeat(64)}`]) assert.ok(isValidTag(t), t);
    for (const t of ['', '.x', '-x', 'a'.repeat(129), 'a:b', 'a/b', 'a b', 'a+b', 'é', 'a\n']) assert.ok(!isValidTag(t), t);
  });

  test('digests: sha256 and sha512, lower-case hex of exact length', () => {
    assert.ok(isValidDigest(D256));
    assert.ok(isValidDigest(D512));
    for (const d of [
      `sha256:${'a'.repeat(63)}`,
      `sha256:${'a'.repeat(65)}`,
      `sha256:${'A'.repeat(64)}`,
      `sha256:${'g'.repeat(64)}`,
      `sha512:${'b'.repeat(64)}`,
      `sha384:${'c'.repeat(96)}`,
      `SHA256:${'a'.repeat(64)}`,
      'sha256:',
      ':abc',
      'sha256',
      `sha256 :${'a'.repeat(64)}`,
      `${D256}\n`,
      '',
    ]) {
      assert.ok(!isValidDigest(d), d);
      throwsOci(() => assertValidDigest(d), 'DIGEST_INVALID', 400);
    }
  });

  test('unsupported-but-well-formed digests are told apart from malformed ones', () => {
    assert.ok(isWellFormedButUnsupportedDigest(`sha384:${'c'.repeat(96)}`));
    assert.ok(isWellFormedButUnsupportedDigest('multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8'));
    assert.ok(!isWellFormedButUnsupportedDigest(`sha256:${'A'.repeat(64)}`), 'upper-case sha256 is malformed');
    assert.ok(!isWellFormedButUnsupportedDigest('sha256:abc'), 'short sha256 is malformed');
    assert.ok(!isWellFormedButUnsupportedDigest(D256));
    assert.ok(!isWellFormedButUnsupportedDigest('not a digest'));
    assert.throws(() => assertValidDigest(`sha384:${'c'.repeat(96)}`), /unsupported/);
    assert.throws(() => assertValidDigest('nope'), /malformed/);
  });

  test('references are a tag or a digest, nothing else', () => {
    assert.deepEqual(parseReference('latest'), { kind: 'tag', tag: 'latest' });
    assert.deepEqual(parseReference(D256), { kind: 'digest', digest: D256 });
    assert.deepEqual(parseReference(D512), { kind: 'digest', digest: D512 });
    for (const r of ['', 'a:b', `sha256:${'a'.repeat(10)}`, '.hidden', 'a'.repeat(129), `sha384:${'c'.repeat(96)}`, 'a/b']) {
      assert.equal(parseReference(r), null, r);
    }
  });

  test('referrers tag schema', () => {
    assert.equal(referrersTagFor(D256), `sha256-${'a'.repeat(64)}`);
    assert.equal(referrersTagFor(D512), `sha512-${'b'.repeat(64)}`);
    assert.ok(isValidTag(referrersTagFor(D512)));
    throwsOci(() => referrersTagFor('sha256:zz'), 'DIGEST_INVALID');
  });
});

describe('splitV2Path', () => {
  const cases: [string, { name: string; kind: string; rest: string } | null][] = [
    ['library/ubuntu/manifests/latest', { name: 'library/ubuntu', kind: 'manifests', rest: 'latest' }],
    [`a/manifests/${D256}`, { name: 'a', kind: 'manifests', rest: D256 }],
    [`a/blobs/${D256}`, { name: 'a', kind: 'blobs', rest: D256 }],
    ['a/b/blobs/uploads/', { name: 'a/b', kind: 'blobs/uploads', rest: '' }],
    ['a/b/blobs/uploads', { name: 'a/b', kind: 'blobs/uploads', rest: '' }],
    ['a/blobs/uploads/0b1c-uuid', { name: 'a', kind: 'blobs/uploads', rest: '0b1c-uuid' }],
    ['a/tags/list', { name: 'a', kind: 'tags/list', rest: '' }],
    [`a/referrers/${D256}`, { name: 'a', kind: 'referrers', rest: D256 }],
    // names holding endpoint keywords: the last occurrence wins
    ['blobs/manifests/latest', { name: 'blobs', kind: 'manifests', rest: 'latest' }],
    [`a/blobs/b/blobs/${D256}`, { name: 'a/blobs/b', kind: 'blobs', rest: D256 }],
    ['a/manifests/b/manifests/v1', { name: 'a/manifests/b', kind: 'manifests', rest: 'v1' }],
    ['manifests/manifests/manifests', { name: 'manifests', kind: 'manifests', rest: 'manifests' }],
    ['a/blobs/uploads/manifests/x', { name: 'a/blobs/uploads', kind: 'manifests', rest: 'x' }],
    ['a/blobs/uploads/tags/list', { name: 'a/blobs/uploads', kind: 'tags/list', rest: '' }],
    ['a/blobs/uploads/blobs/uploads/', { name: 'a/blobs/uploads', kind: 'blobs/uploads', rest: '' }],
    ['a/blobs/blobs/uploads/id1', { name: 'a/blobs', kind: 'blobs/uploads', rest: 'id1' }],
    ['tags/list/tags/list', { name: 'tags/list', kind: 'tags/list', rest: '' }],
    ['a/referrers/referrers/x', { name: 'a/referrers', kind: 'referrers', rest: 'x' }],
    // leading slash and query string tolerated, escapes decoded
    ['/a/manifests/latest?foo=bar', { name: 'a', kind: 'manifests', rest: 'latest' }],
    [`a/manifests/sha256%3A${'a'.repeat(64)}`, { name: 'a', kind: 'manifests', rest: D256 }],
    ['a%2Fb/tags/list', { name: 'a/b', kind: 'tags/list', rest: '' }],
    // no endpoint
    ['a', null],
    ['a/b', null],
    ['', null],
    ['manifests/latest', null],
    ['tags/list', null],
    ['blobs/uploads/', null],
    ['a/manifests/', null],
    ['a/blobs/', null],
    ['a/referrers/', null],
    ['a/tags/list/', null],
    ['a/tags', null],
    ['a/manifests/%zz', null],
    ['_catalog', null],
    ['/manifests/latest', null],
  ];
  for (const [path, want] of cases) {
    test(`${JSON.stringify(path)} → ${want === null ? 'null' : `${want.kind} of ${want.name}`}`, () => {
      assert.deepEqual(splitV2Path(path), want);
    });
  }

  const invalidNames = [
    'A/manifests/latest',
    'a/../b/manifests/latest',
    '../manifests/latest',
    'a//b/tags/list',
    '//manifests/latest',
    'a/./b/blobs/uploads/',
    'a/B/blobs/uploads/x',
    `${'a'.repeat(256)}/tags/list`,
    'a%2F%2Fb/tags/list',
    'a%2E%2E/tags/list',
    'a b/tags/list',
  ];
  for (const path of invalidNames) {
    test(`${JSON.stringify(path.length > 60 ? `${path.slice(0, 20)}…` : path)} → NAME_INVALID`, () => {
      throwsOci(() => splitV2Path(path), 'NAME_INVALID', 400);
    });
  }
});
