import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { OciError } from '../../../src/formats/oci/errors.ts';
import {
  HEADERS,
  blobLocation,
  buildReferrersIndex,
  checkChunk,
  compareTags,
  formatUploadRange,
  linkHeader,
  manifestLocation,
  paginate,
  parseContentRange,
  parsePagination,
  parseRangeHeader,
  parseUploadRange,
  uploadLocation,
} from '../../../src/formats/oci/http.ts';
import type { Descriptor } from '../../../src/formats/oci/manifest.ts';
import { MT } from '../../../src/formats/oci/media-types.ts';

const D = (c: string): string => `sha256:${c.repeat(64)}`;

function throwsOci(fn: () => unknown, code: string, status: number): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof OciError, `expected OciError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.status, status);
    return true;
  });
}

describe('Content-Range of upload chunks', () => {
  test('spec form <start>-<end>', () => {
    assert.deepEqual(parseContentRange('0-1023'), { start: 0, end: 1023 });
    assert.deepEqual(parseContentRange(' 1024-2047 '), { start: 1024, end: 2047 });
    assert.deepEqual(parseContentRange('5-5'), { start: 5, end: 5 });
  });
  test('RFC form bytes <start>-<end>/<total|*> and bytes=', () => {
    assert.deepEqual(parseContentRange('bytes 0-1023/4096'), { start: 0, end: 1023, total: 4096 });
    assert.deepEqual(parseContentRange('bytes 1024-2047/*'), { start: 1024, end: 2047 });
    assert.deepEqual(parseContentRange('bytes 0-9'), { start: 0, end: 9 });
    assert.deepEqual(parseContentRange('bytes=0-9'), { start: 0, end: 9 });
    assert.deepEqual(parseContentRange('Bytes 0-9/10'), { start: 0, end: 9, total: 10 });
  });
  test('malformed → BLOB_UPLOAD_INVALID 400', () => {
    for (const h of ['', '-', '0-', '-9', 'a-b', '0 - 9', '0-9-10', 'bytes', 'bytes */100', 'items 0-9/10', '1e3-2e3', '0x0-0x9', '0-9/', '+1-2', `0-${'9'.repeat(30)}`]) {
      throwsOci(() => parseContentRange(h), 'BLOB_UPLOAD_INVALID', 400);
    }
  });
  test('end before start, or total not past end → RANGE_INVALID 416', () => {
    throwsOci(() => parseContentRange('10-9'), 'RANGE_INVALID', 416);
    throwsOci(() => parseContentRange('bytes 0-9/9'), 'RANGE_INVALID', 416);
    throwsOci(() => parseContentRange('bytes 0-9/5'), 'RANGE_INVALID', 416);
  });
  test('checkChunk: order and length', () => {
    checkChunk(undefined, 123);
    checkChunk({ start: 0, end: 9 }, 0, 10);
    checkChunk({ start: 10, end: 19 }, 10);
    throwsOci(() => checkChunk({ start: 0, end: 9 }, 10, 10), 'RANGE_INVALID', 416);
    throwsOci(() => checkChunk({ start: 20, end: 29 }, 10, 10), 'RANGE_INVALID', 416);
    throwsOci(() => checkChunk({ start: 10, end: 19 }, 10, 9), 'SIZE_INVALID', 400);
    try {
      checkChunk({ start: 5, end: 9 }, 3);
    } catch (e) {
      assert.ok(e instanceof OciError);
      assert.deepEqual(e.detail, { expectedStart: 3, start: 5 });
    }
  });
});

describe('upload status Range header', () => {
  test('0-<size-1>, and 0-0 for an empty session (as Distribution)', () => {
    assert.equal(formatUploadRange(0), '0-0');
    assert.equal(formatUploadRange(1), '0-0');
    assert.equal(formatUploadRange(1024), '0-1023');
  });
  test('parse', () => {
    assert.deepEqual(parseUploadRange('0-1023'), { start: 0, end: 1023 });
    assert.deepEqual(parseUploadRange('bytes=0-5'), { start: 0, end: 5 });
    assert.equal(parseUploadRange(undefined), null);
    assert.equal(parseUploadRange('0--1'), null);
    assert.equal(parseUploadRange('junk'), null);
  });
});

describe('blob GET Range', () => {
  const size = 1000;
  test('no or unusable Range → full', () => {
    for (const h of [undefined, '', 'bytes=', 'bytes=-', 'items=0-5', 'bytes=a-b', 'bytes=5-1', 'bytes=0-1,5-9', 'bytes 0-5', '0-5', 'bytes=--1']) {
      assert.deepEqual(parseRangeHeader(h, size), { kind: 'full' }, String(h));
    }
  });
  test('closed, open and suffix ranges', () => {
    assert.deepEqual(parseRangeHeader('bytes=0-99', size), { kind: 'partial', start: 0, end: 99, length: 100, contentRange: 'bytes 0-99/1000' });
    assert.deepEqual(parseRangeHeader('bytes=900-', size), { kind: 'partial', start: 900, end: 999, length: 100, contentRange: 'bytes 900-999/1000' });
    assert.deepEqual(parseRangeHeader('bytes=-100', size), { kind: 'partial', start: 900, end: 999, length: 100, contentRange: 'bytes 900-999/1000' });
    assert.deepEqual(parseRangeHeader('bytes=5-5', size), { kind: 'partial', start: 5, end: 5, length: 1, contentRange: 'bytes 5-5/1000' });
    assert.deepEqual(parseRangeHeader('BYTES = 0-0', size), { kind: 'partial', start: 0, end: 0, length: 1, contentRange: 'bytes 0-0/1000' });
  });
  test('end past the size is clamped; suffix longer than the blob is the whole blob', () => {
    assert.deepEqual(parseRangeHeader('bytes=990-5000', size), { kind: 'partial', start: 990, end: 999, length: 10, contentRange: 'bytes 990-999/1000' });
    assert.deepEqual(parseRangeHeader('bytes=-5000', size), { kind: 'partial', start: 0, end: 999, length: 1000, contentRange: 'bytes 0-999/1000' });
    assert.deepEqual(parseRangeHeader(`bytes=0-${'9'.repeat(40)}`, size), { kind: 'partial', start: 0, end: 999, length: 1000, contentRange: 'bytes 0-999/1000' });
  });
  test('unsatisfiable → 416 with bytes */size', () => {
    for (const h of ['bytes=1000-', 'bytes=1000-2000', 'bytes=5000-', 'bytes=-0', `bytes=${'9'.repeat(40)}-`]) {
      assert.deepEqual(parseRangeHeader(h, size), { kind: 'unsatisfiable', contentRange: 'bytes */1000' }, h);
    }
  });
  test('zero-length blob: Range ignored', () => {
    assert.deepEqual(parseRangeHeader('bytes=0-', 0), { kind: 'full' });
    assert.deepEqual(parseRangeHeader('bytes=-5', 0), { kind: 'full' });
  });
});

describe('pagination', () => {
  test('parsePagination', () => {
    assert.deepEqual(parsePagination({}), {});
    assert.deepEqual(parsePagination({ n: '10' }), { n: 10 });
    assert.deepEqual(parsePagination({ n: '0' }), { n: 0 });
    assert.deepEqual(parsePagination({ n: '', last: '' }), {});
    assert.deepEqual(parsePagination({ n: ['3', '9'], last: ['b', 'c'] }), { n: 3, last: 'b' });
    assert.deepEqual(parsePagination({ last: 'v1.0' }), { last: 'v1.0' });
    for (const n of ['-1', '1.5', 'abc', ' 1', '1e3', '0x10', '99999999999999999999']) {
      throwsOci(() => parsePagination({ n }), 'PAGINATION_NUMBER_INVALID', 400);
    }
  });

  test('compareTags: case-insensitive, total order', () => {
    const tags = ['b', 'B', 'a', 'A', 'v10', 'v2', 'V1', '_x', '1.0', 'latest'];
    assert.deepEqual([...tags].sort(compareTags), ['1.0', '_x', 'A', 'a', 'B', 'b', 'latest', 'V1', 'v10', 'v2']);
    assert.equal(compareTags('x', 'x'), 0);
  });

  const tags = ['a', 'b', 'c', 'd', 'e'];
  test('n and last', () => {
    assert.deepEqual(paginate(tags, {}), { items: tags });
    assert.deepEqual(paginate(tags, { n: 2 }), { items: ['a', 'b'], next: { n: 2, last: 'b' } });
    assert.deepEqual(paginate(tags, { n: 2, last: 'b' }), { items: ['c', 'd'], next: { n: 2, last: 'd' } });
    assert.deepEqual(paginate(tags, { n: 2, last: 'd' }), { items: ['e'] });
    assert.deepEqual(paginate(tags, { n: 5 }), { items: tags });
    assert.deepEqual(paginate(tags, { n: 50 }), { items: tags });
    assert.deepEqual(paginate(tags, { last: 'c' }), { items: ['d', 'e'] });
    assert.deepEqual(paginate(tags, { last: 'e' }), { items: [] });
    assert.deepEqual(paginate(tags, { last: 'zzz' }), { items: [] });
    assert.deepEqual(paginate(tags, { last: 'bb' }), { items: ['c', 'd', 'e'] }, 'last need not exist');
    assert.deepEqual(paginate([], { n: 3 }), { items: [] });
  });
  test('n = 0 → empty list and no Link (spec MUST)', () => {
    assert.deepEqual(paginate(tags, { n: 0 }), { items: [] });
    assert.deepEqual(paginate(tags, { n: 0, last: 'a' }), { items: [] });
  });
  test('maxN caps the page and gives a Link', () => {
    assert.deepEqual(paginate(tags, { n: 1000 }, { maxN: 3 }), { items: ['a', 'b', 'c'], next: { n: 3, last: 'c' } });
    assert.deepEqual(paginate(tags, {}, { maxN: 3 }), { items: ['a', 'b', 'c'], next: { n: 3, last: 'c' } });
  });
  test('custom order (catalog: plain code-unit order)', () => {
    const repos = ['a/b', 'a-b', 'A'];
    const byCode = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
    const sorted = [...repos].sort(byCode);
    assert.deepEqual(paginate(sorted, { n: 1, last: 'a-b' }, { compare: byCode }), { items: ['a/b'] });
  });
  test('Link header', () => {
    assert.equal(linkHeader('/v2/library/ubuntu/tags/list', { n: 2, last: 'b' }), '</v2/library/ubuntu/tags/list?n=2&last=b>; rel="next"');
    assert.equal(linkHeader('/v2/_catalog', { n: 100, last: 'a/b c' }), '</v2/_catalog?n=100&last=a%2Fb%20c>; rel="next"');
  });
});

describe('locations and header names', () => {
  test('paths', () => {
    assert.equal(uploadLocation('a/b', 'abc-123'), '/v2/a/b/blobs/uploads/abc-123');
    assert.equal(blobLocation('a', D('1')), `/v2/a/blobs/${D('1')}`);
    assert.equal(manifestLocation('a', D('2')), `/v2/a/manifests/${D('2')}`);
  });
  test('header names', () => {
    assert.equal(HEADERS.OCI_FILTERS_APPLIED, 'OCI-Filters-Applied');
    assert.equal(HEADERS.OCI_SUBJECT, 'OCI-Subject');
    assert.equal(HEADERS.CONTENT_DIGEST, 'Docker-Content-Digest');
  });
});

describe('referrers index', () => {
  const sbom: Descriptor = {
    mediaType: MT.OCI_MANIFEST,
    digest: D('1'),
    size: 100,
    artifactType: 'application/vnd.example.sbom.v1',
    annotations: { 'org.opencontainers.image.created': '2022-01-01T14:42:55Z' },
  };
  const sig: Descriptor = { mediaType: MT.OCI_MANIFEST, digest: D('2'), size: 200, artifactType: 'application/vnd.example.signature.v1' };
  const idx: Descriptor = { mediaType: MT.OCI_INDEX, digest: D('3'), size: 300 };

  test('empty → empty manifests, no filter header', () => {
    const r = buildReferrersIndex([]);
    assert.deepEqual(r, { index: { schemaVersion: 2, mediaType: MT.OCI_INDEX, manifests: [] } });
    assert.equal(JSON.stringify(r.index), '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}');
  });
  test('all descriptors, deduplicated, in order', () => {
    const r = buildReferrersIndex([sbom, sig, idx, sbom]);
    assert.deepEqual(r.index.manifests, [sbom, sig, idx]);
    assert.equal(r.filtersApplied, undefined);
  });
  test('artifactType filter', () => {
    const r = buildReferrersIndex([sbom, sig, idx], { artifactType: 'application/vnd.example.sbom.v1' });
    assert.deepEqual(r.index.manifests, [sbom]);
    assert.equal(r.filtersApplied, 'artifactType');
    const none = buildReferrersIndex([sbom, sig, idx], { artifactType: 'application/x-none' });
    assert.deepEqual(none.index.manifests, []);
    assert.equal(none.filtersApplied, 'artifactType');
    const two = buildReferrersIndex([sbom, sig, idx], { artifactType: ['application/vnd.example.signature.v1', 'application/vnd.example.sbom.v1'] });
    assert.deepEqual(two.index.manifests, [sbom, sig]);
    assert.equal(buildReferrersIndex([sbom], { artifactType: '' }).filtersApplied, undefined, 'empty filter is no filter');
  });
});
