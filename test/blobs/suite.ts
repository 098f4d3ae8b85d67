/**
 * The blob store conformance suite: every driver runs it in a few lines (see fs.test.ts).
 *
 *   runBlobStoreSuite('fs', async () => ({ store, cleanup }), { skip: [{ test: '…', reason: '…' }] });
 *
 * Each test gets a fresh store from the factory and must end with exactly the blobs it declares (it returns
 * them), no upload sessions and — when the fixture can see them — no temp objects; otherwise it fails.
 * Errors are asserted by type and must name the driver.
 *
 * Also exports the deterministic data helpers the other blob tests use (`patternStream`, `patternDigest`…):
 * generated lazily, chunk by chunk, so no test buffers a large blob either.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it, type TestContext } from 'node:test';
import { Readable } from 'node:stream';
import type { BlobStore, Digest } from '../../src/blobs/types.ts';
import { digestOf, type DigestAlgorithm } from '../../src/blobs/digest.ts';
import {
  BlobNotFoundError,
  BlobStoreError,
  DigestMismatchError,
  InvalidDigestError,
  InvalidUploadIdError,
  RangeNotSatisfiableError,
  SizeMismatchError,
  TooLargeError,
  UploadExistsError,
  UploadNotFoundError,
  UploadOffsetError,
} from '../../src/blobs/errors.ts';

// ---------------------------------------------------------------------------------------------------------------
// Deterministic generated data

const KiB = 1024;
const MiB = 1024 * KiB;

/** 32-bit mix (murmur3 finaliser) of seed and word index: byte i of a pattern is addressable without its prefix. */
function word(seed: number, index: number): number {
  let h = (Math.imul(index, 0x9e3779b1) ^ Math.imul(seed, 0x85ebca77)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Bytes [start, start + length) of the pattern named `seed`. */
export function patternBytes(seed: number, start: number, length: number): Buffer {
  const first = Math.floor(start / 4);
  const words = new Uint32Array(Math.ceil((start + length) / 4) - first);
  for (let i = 0; i < words.length; i++) words[i] = word(seed, first + i);
  const bytes = Buffer.from(words.buffer, words.byteOffset, words.byteLength);
  return bytes.subarray(start - first * 4, start - first * 4 + length);
}

export interface PatternStreamOptions {
  seed?: number;
  /** Offset in the pattern of the first byte (for resuming an upload). Default 0. */
  start?: number;
  /** Default 256 KiB. */
  chunkSize?: number;
  /** After this many bytes the stream is destroyed with `failWith` (default: an Error "source failed"). */
  failAfter?: number;
  failWith?: Error;
  /** After this many bytes the stream stops producing until `release()`; `onStall` runs once when it does. */
  stallAfter?: number;
  onStall?: () => void;
}

/** A lazily generated stream of `size` pattern bytes; `pulled` counts bytes handed to the consumer so far. */
export class PatternStream extends Readable {
  pulled = 0;
  readonly #size: number;
  readonly #opts: PatternStreamOptions;
  #stalled = false;
  #released = false;

  constructor(size: number, opts: PatternStreamOptions = {}) {
    super({ highWaterMark: opts.chunkSize ?? 256 * KiB });
    this.#size = size;
    this.#opts = opts;
  }

  override _read(): void {
    const { seed = 1, start = 0, chunkSize = 256 * KiB, failAfter, stallAfter } = this.#opts;
    if (failAfter !== undefined && this.pulled >= failAfter) {
      this.destroy(this.#opts.failWith ?? new Error('source failed'));
      return;
    }
    if (stallAfter !== undefined && !this.#released && this.pulled >= stallAfter) {
      if (!this.#stalled) {
        this.#stalled = true;
        this.#opts.onStall?.();
      }
      return;
    }
    if (this.pulled >= this.#size) {
      this.push(null);
      return;
    }
    let n = Math.min(chunkSize, this.#size - this.pulled);
    if (failAfter !== undefined) n = Math.min(n, failAfter - this.pulled);
    if (stallAfter !== undefined && !this.#released) n = Math.min(n, stallAfter - this.pulled);
    const chunk = patternBytes(seed, start + this.pulled, n);
    this.pulled += n;
    this.push(chunk);
  }

  /** Continues a stalled stream. */
  release(): void {
    this.#released = true;
    if (this.#stalled) this._read();
  }
}

export function patternStream(size: number, opts: PatternStreamOptions = {}): PatternStream {
  return new PatternStream(size, opts);
}

/** Digest of `size` pattern bytes from `start`, computed chunk by chunk. */
export function patternDigest(
  size: number,
  opts: { seed?: number; start?: number; algorithm?: DigestAlgorithm } = {},
): Digest {
  const { seed = 1, start = 0, algorithm = 'sha256' } = opts;
  const hash = createHash(algorithm);
  for (let at = 0; at < size; at += MiB) hash.update(patternBytes(seed, start + at, Math.min(MiB, size - at)));
  return `${algorithm}:${hash.digest('hex')}`;
}

/** A stream of one in-memory buffer (no chunk for an empty buffer). */
export function bufferStream(buf: Buffer | string): Readable {
  const data = typeof buf === 'string' ? Buffer.from(buf) : buf;
  return new Readable({
    read() {
      if (data.length > 0) this.push(data);
      this.push(null);
    },
  });
}

/** Reads a (small) stream into memory. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Hashes a stream without keeping it. */
export async function hashStream(
  stream: Readable,
  algorithm: DigestAlgorithm = 'sha256',
): Promise<{ digest: Digest; size: number }> {
  const hash = createHash(algorithm);
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `${algorithm}:${hash.digest('hex')}`, size };
}

export async function listDigests(store: BlobStore): Promise<Digest[]> {
  const out: Digest[] = [];
  for await (const stat of store.list()) out.push(stat.digest);
  return out.sort();
}

export async function listUploads(store: BlobStore): Promise<{ id: string; size: number }[]> {
  const out: { id: string; size: number }[] = [];
  for await (const u of store.uploads.list()) out.push({ id: u.id, size: u.size });
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

// ---------------------------------------------------------------------------------------------------------------
// The suite

export interface BlobStoreFixture {
  store: BlobStore;
  cleanup(): Promise<void>;
  /** Temp objects present now (driver-specific). When given, every test must end with none. */
  tempObjects?(): Promise<string[]>;
  /** Leaves a temp object `ageMs` old, as a crash would. Needed by the sweep tests (skipped without it). */
  plantTempObject?(ageMs: number): Promise<void>;
}

export interface BlobStoreSuiteOptions {
  /** Tests this driver cannot pass, each by exact title and with a reason printed in the report. */
  skip?: { test: string; reason: string }[];
}

type ErrorClass = abstract new (...args: never[]) => BlobStoreError;

/** Asserts a rejection of the given type that names the driver; returns the error for further checks. */
async function rejectsWith<E extends BlobStoreError>(
  promise: Promise<unknown>,
  type: ErrorClass & { prototype: E },
  store: BlobStore,
): Promise<E> {
  let caught: unknown;
  await assert.rejects(promise, (err) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof type, `expected ${type.name}, got ${String(caught)}`);
  assert.equal((caught as E).driver, store.driver, 'error names the driver');
  assert.equal(typeof (caught as E).code, 'string');
  return caught as E;
}

async function assertAbsent(store: BlobStore, digest: Digest): Promise<void> {
  assert.equal(await store.stat(digest), null);
  await rejectsWith(store.open(digest), BlobNotFoundError, store);
  assert.ok(!(await listDigests(store)).includes(digest), 'not listed');
}

const VALID_ID = 'upload-0001';
const OTHER_ID = 'upload_0002';

const BAD_DIGESTS: string[] = [
  'sha256:../../etc/passwd',
  `sha256:${'A'.repeat(64)}`,
  `sha256:${'a'.repeat(63)}`,
  `sha256:${'a'.repeat(65)}`,
  `sha512:${'a'.repeat(64)}`,
  `md5:${'a'.repeat(32)}`,
  `SHA256:${'a'.repeat(64)}`,
  `sha256:${'a'.repeat(64)}\n`,
  ` sha256:${'a'.repeat(64)}`,
  `sha256:${'a'.repeat(62)}/x`,
  'sha256:',
  '',
];

const BAD_IDS: string[] = ['short', '../../etc/passwd', 'has/slash/inside', 'with space here', 'unicodé-12345', 'a'.repeat(129), ''];

export function runBlobStoreSuite(
  name: string,
  factory: () => Promise<BlobStoreFixture>,
  opts: BlobStoreSuiteOptions = {},
): void {
  const skips = new Map((opts.skip ?? []).map((s) => [s.test, s.reason]));

  /** A test on a fresh store; `fn` returns the blobs that must remain (exactly). */
  function test(title: string, fn: (f: BlobStoreFixture, t: TestContext) => Promise<Digest[] | void>): void {
    const reason = skips.get(title);
    if (reason !== undefined) {
      it(title, { skip: reason }, () => {});
      return;
    }
    it(title, async (t) => {
      const fixture = await factory();
      try {
        const expected = (await fn(fixture, t)) ?? [];
        assert.deepEqual(await listDigests(fixture.store), [...new Set(expected)].sort(), 'blobs left behind');
        assert.deepEqual(await listUploads(fixture.store), [], 'upload sessions left behind');
        if (fixture.tempObjects !== undefined) {
          assert.deepEqual(await fixture.tempObjects(), [], 'temp objects left behind');
        }
      } finally {
        await fixture.store.close();
        await fixture.cleanup();
      }
    });
  }

  describe(`blob store conformance: ${name}`, () => {
    describe('put / open / stat', () => {
      test('round-trips a small blob', async ({ store }) => {
        const digest = digestOf('hello, granary');
        const result = await store.put(bufferStream('hello, granary'), { expectedDigest: digest });
        assert.deepEqual(result, { digest, size: 14, created: true });
        assert.equal((await readAll(await store.open(digest))).toString(), 'hello, granary');
        return [digest];
      });

      test('round-trips an empty blob', async ({ store }) => {
        const digest = digestOf('');
        assert.deepEqual(await store.put(bufferStream(''), { expectedDigest: digest }), {
          digest,
          size: 0,
          created: true,
        });
        assert.equal((await readAll(await store.open(digest))).length, 0);
        assert.equal((await store.stat(digest))?.size, 0);
        return [digest];
      });

      test('computes the sha256 digest when none is given', async ({ store }) => {
        const result = await store.put(bufferStream('no digest given'));
        assert.equal(result.digest, digestOf('no digest given'));
        assert.equal(result.size, 15);
        assert.equal(result.created, true);
        return [result.digest];
      });

      test('stores under sha512 when the expected digest is sha512', async ({ store }) => {
        const digest = digestOf('five-twelve', 'sha512');
        const result = await store.put(bufferStream('five-twelve'), { expectedDigest: digest });
        assert.deepEqual(result, { digest, size: 11, created: true });
        assert.equal((await store.stat(digest))?.size, 11);
        assert.equal((await readAll(await store.open(digest))).toString(), 'five-twelve');
        assert.equal(await store.stat(digestOf('five-twelve')), null, 'not stored under sha256 too');
        return [digest];
      });

      test('streams a 20 MiB blob through put and open', async ({ store }) => {
        const size = 20 * MiB + 123;
        const digest = patternDigest(size, { seed: 20 });
        const source = patternStream(size, { seed: 20 });
        const result = await store.put(source, { expectedDigest: digest, expectedSize: size });
        assert.deepEqual(result, { digest, size, created: true });
        assert.deepEqual(await hashStream(await store.open(digest)), { digest, size });
        return [digest];
      });

      test('stat reports digest, size and modifiedAt; null when absent', async ({ store }) => {
        const digest = digestOf('stat me');
        assert.equal(await store.stat(digest), null);
        await store.put(bufferStream('stat me'));
        const stat = await store.stat(digest);
        assert.ok(stat !== null);
        assert.equal(stat.digest, digest);
        assert.equal(stat.size, 7);
        assert.ok(Number.isFinite(stat.modifiedAt));
        assert.ok(Math.abs(stat.modifiedAt - Date.now()) < 10 * 60 * 1000, 'modifiedAt is a current epoch time');
        return [digest];
      });

      test('open of an absent blob fails with BlobNotFoundError', async ({ store }) => {
        await rejectsWith(store.open(digestOf('never stored')), BlobNotFoundError, store);
      });

      test('serves byte ranges', async ({ store }) => {
        const content = patternBytes(7, 0, 1000);
        const { digest } = await store.put(bufferStream(content));
        const read = async (start: number, end?: number) =>
          readAll(await store.open(digest, { range: end === undefined ? { start } : { start, end } }));
        assert.deepEqual(await read(0), content);
        assert.deepEqual(await read(600), content.subarray(600));
        assert.deepEqual(await read(10, 19), content.subarray(10, 20));
        assert.deepEqual(await read(5, 5), content.subarray(5, 6));
        assert.deepEqual(await read(999), content.subarray(999));
        assert.deepEqual(await read(999, 999), content.subarray(999));
        assert.deepEqual(await read(990, 5000), content.subarray(990), 'end past the blob is clamped');
        return [digest];
      });

      test('rejects unsatisfiable ranges with RangeNotSatisfiableError', async ({ store }) => {
        const { digest } = await store.put(bufferStream(patternBytes(8, 0, 100)));
        const empty = (await store.put(bufferStream(''))).digest;
        for (const range of [{ start: 100 }, { start: 1000, end: 2000 }, { start: 50, end: 49 }, { start: -1 }, { start: 1.5 }]) {
          const err = await rejectsWith(store.open(digest, { range }), RangeNotSatisfiableError, store);
          assert.equal(err.size, 100, `size for ${JSON.stringify(range)}`);
        }
        const err = await rejectsWith(store.open(empty, { range: { start: 0 } }), RangeNotSatisfiableError, store);
        assert.equal(err.size, 0);
        return [digest, empty];
      });

      test('dedups: a second put of the same content reports created:false', async ({ store }) => {
        const first = await store.put(bufferStream('twice'));
        const second = await store.put(bufferStream('twice'), { expectedDigest: first.digest });
        assert.equal(first.created, true);
        assert.deepEqual(second, { digest: first.digest, size: 5, created: false });
        assert.equal((await readAll(await store.open(first.digest))).toString(), 'twice');
        return [first.digest];
      });

      test('concurrent puts of the same content all succeed and store one blob', async ({ store }) => {
        const size = 2 * MiB + 7;
        const digest = patternDigest(size, { seed: 3 });
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            store.put(patternStream(size, { seed: 3, chunkSize: (16 + i) * KiB }), i % 2 ? { expectedDigest: digest } : {}),
          ),
        );
        for (const r of results) {
          assert.equal(r.digest, digest);
          assert.equal(r.size, size);
        }
        assert.ok(results.some((r) => r.created), 'at least one put created the blob');
        assert.deepEqual(await hashStream(await store.open(digest)), { digest, size });
        return [digest];
      });

      test('list returns exactly the blobs put', async ({ store }) => {
        const digests: Digest[] = [];
        for (const text of ['one', 'two', 'three', '']) digests.push((await store.put(bufferStream(text))).digest);
        const d512 = digestOf('four', 'sha512');
        await store.put(bufferStream('four'), { expectedDigest: d512 });
        digests.push(d512);
        const stats = new Map<string, number>();
        for await (const s of store.list()) stats.set(s.digest, s.size);
        assert.deepEqual([...stats.keys()].sort(), [...digests].sort());
        assert.equal(stats.get(digestOf('three')), 5);
        assert.equal(stats.get(d512), 4);
        return digests;
      });

      test('delete removes a blob and reports whether it existed', async ({ store }) => {
        const { digest } = await store.put(bufferStream('delete me'));
        const keep = (await store.put(bufferStream('keep me'))).digest;
        assert.equal(await store.delete(digest), true);
        await assertAbsent(store, digest);
        assert.equal(await store.delete(digest), false);
        assert.equal(await store.delete(digestOf('never stored')), false);
        return [keep];
      });

      test('an AbortSignal aborts an open stream', async ({ store }) => {
        const size = 3 * MiB;
        const { digest } = await store.put(patternStream(size, { seed: 4 }));
        const controller = new AbortController();
        const stream = await store.open(digest, { signal: controller.signal });
        controller.abort();
        await assert.rejects(readAll(stream), { name: 'AbortError' });
        const aborted = AbortSignal.abort();
        await assert.rejects(store.open(digest, { signal: aborted }), { name: 'AbortError' });
        return [digest];
      });
    });

    describe('failed writes leave nothing', () => {
      test('rejects content that does not match the expected digest', async ({ store }) => {
        const expected = digestOf('what was announced');
        const err = await rejectsWith(
          store.put(bufferStream('what was sent'), { expectedDigest: expected }),
          DigestMismatchError,
          store,
        );
        assert.equal(err.expected, expected);
        assert.equal(err.actual, digestOf('what was sent'));
        await assertAbsent(store, expected);
        await assertAbsent(store, digestOf('what was sent'));
      });

      test('rejects a large stream with a wrong sha512 digest', async ({ store }) => {
        const size = 3 * MiB;
        const expected = patternDigest(size, { seed: 5, algorithm: 'sha512' });
        const err = await rejectsWith(
          store.put(patternStream(size, { seed: 6 }), { expectedDigest: expected }),
          DigestMismatchError,
          store,
        );
        assert.equal(err.actual, patternDigest(size, { seed: 6, algorithm: 'sha512' }));
        await assertAbsent(store, expected);
      });

      test('rejects a size different from expectedSize', async ({ store }) => {
        const short = await rejectsWith(
          store.put(bufferStream('12345'), { expectedSize: 6 }),
          SizeMismatchError,
          store,
        );
        assert.equal(short.expected, 6);
        assert.equal(short.actual, 5);
        const long = patternStream(8 * MiB, { seed: 9 });
        const err = await rejectsWith(store.put(long, { expectedSize: MiB }), SizeMismatchError, store);
        assert.equal(err.expected, MiB);
        assert.ok(long.pulled < 8 * MiB, 'stopped reading once past expectedSize');
        await assertAbsent(store, digestOf('12345'));
      });

      test('stops at maxBytes with TooLargeError', async ({ store }) => {
        const source = patternStream(16 * MiB, { seed: 10, chunkSize: 64 * KiB });
        const err = await rejectsWith(store.put(source, { maxBytes: MiB }), TooLargeError, store);
        assert.equal(err.maxBytes, MiB);
        assert.ok(source.pulled < 16 * MiB, 'stopped reading once past maxBytes');
        await assertAbsent(store, patternDigest(16 * MiB, { seed: 10 }));
        await rejectsWith(store.put(bufferStream('x'), { expectedSize: 10, maxBytes: 5 }), TooLargeError, store);
        const exact = await store.put(bufferStream('12345'), { maxBytes: 5 });
        return [exact.digest];
      });

      test('a source that fails mid-way rejects with its error and leaves nothing', async ({ store }) => {
        const boom = new Error('client went away');
        const source = patternStream(8 * MiB, { seed: 11, failAfter: 3 * MiB + 17, failWith: boom });
        await assert.rejects(store.put(source), (err) => err === boom);
        await assertAbsent(store, patternDigest(8 * MiB, { seed: 11 }));
        await assertAbsent(store, patternDigest(3 * MiB + 17, { seed: 11 }));
      });

      test('an AbortSignal aborts a put and leaves nothing', async ({ store }) => {
        const controller = new AbortController();
        const source = patternStream(8 * MiB, { seed: 12, stallAfter: 2 * MiB, onStall: () => controller.abort() });
        await assert.rejects(store.put(source, { signal: controller.signal }), { name: 'AbortError' });
        await assert.rejects(store.put(bufferStream('late'), { signal: AbortSignal.abort() }), {
          name: 'AbortError',
        });
        await assertAbsent(store, digestOf('late'));
      });

      test('rejects invalid digests in every method', async ({ store }) => {
        const { digest } = await store.put(bufferStream('valid'));
        await store.uploads.create(VALID_ID);
        for (const bad of BAD_DIGESTS) {
          await rejectsWith(store.stat(bad), InvalidDigestError, store);
          await rejectsWith(store.open(bad), InvalidDigestError, store);
          await rejectsWith(store.delete(bad), InvalidDigestError, store);
          await rejectsWith(store.put(bufferStream('valid'), { expectedDigest: bad }), InvalidDigestError, store);
          await rejectsWith(store.uploads.commit(VALID_ID, bad), InvalidDigestError, store);
        }
        assert.equal(await store.uploads.size(VALID_ID), 0, 'a bad commit does not touch the session');
        await store.uploads.abort(VALID_ID);
        return [digest];
      });
    });

    describe('arguments', () => {
      test('rejects malformed numeric options before touching the store', async ({ store }) => {
        for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
          await assert.rejects(store.put(bufferStream('x'), { expectedSize: bad }), RangeError);
          await assert.rejects(store.put(bufferStream('x'), { maxBytes: bad }), RangeError);
          await assert.rejects(store.uploads.append(VALID_ID, bufferStream('x'), { offset: bad }), RangeError);
          await assert.rejects(store.sweep(bad), RangeError);
        }
      });
    });

    describe('uploads', () => {
      test('create, size and duplicate create', async ({ store }) => {
        assert.equal(await store.uploads.size(VALID_ID), null);
        await store.uploads.create(VALID_ID);
        assert.equal(await store.uploads.size(VALID_ID), 0);
        await rejectsWith(store.uploads.create(VALID_ID), UploadExistsError, store);
        assert.deepEqual(await listUploads(store), [{ id: VALID_ID, size: 0 }]);
        await store.uploads.abort(VALID_ID);
      });

      test('appends in order and commits a verified blob', async ({ store }) => {
        const parts = [MiB + 5, 0, 3 * MiB, 77];
        const total = parts.reduce((a, b) => a + b, 0);
        const digest = patternDigest(total, { seed: 13 });
        await store.uploads.create(VALID_ID);
        let offset = 0;
        for (const n of parts) {
          const size = await store.uploads.append(VALID_ID, patternStream(n, { seed: 13, start: offset }), { offset });
          offset += n;
          assert.equal(size, offset);
          assert.equal(await store.uploads.size(VALID_ID), offset);
        }
        assert.deepEqual(await listUploads(store), [{ id: VALID_ID, size: total }]);
        assert.equal(await store.stat(digest), null, 'not visible before commit');
        assert.deepEqual(await store.uploads.commit(VALID_ID, digest, { expectedSize: total }), {
          digest,
          size: total,
          created: true,
        });
        assert.equal(await store.uploads.size(VALID_ID), null, 'session gone after commit');
        assert.deepEqual(await hashStream(await store.open(digest)), { digest, size: total });
        return [digest];
      });

      test('commits an empty session and a sha512 digest', async ({ store }) => {
        await store.uploads.create(VALID_ID);
        const empty = digestOf('');
        assert.deepEqual(await store.uploads.commit(VALID_ID, empty), { digest: empty, size: 0, created: true });
        await store.uploads.create(OTHER_ID);
        await store.uploads.append(OTHER_ID, bufferStream('sha512 upload'), { offset: 0 });
        const d512 = digestOf('sha512 upload', 'sha512');
        assert.deepEqual(await store.uploads.commit(OTHER_ID, d512), { digest: d512, size: 13, created: true });
        return [empty, d512];
      });

      test('append at the wrong offset is rejected and writes nothing', async ({ store }) => {
        await store.uploads.create(VALID_ID);
        await store.uploads.append(VALID_ID, bufferStream('abc'), { offset: 0 });
        for (const offset of [0, 2, 4, 1000]) {
          const err = await rejectsWith(
            store.uploads.append(VALID_ID, bufferStream('zzz'), { offset }),
            UploadOffsetError,
            store,
          );
          assert.equal(err.expected, 3);
          assert.equal(err.given, offset);
          assert.equal(await store.uploads.size(VALID_ID), 3);
        }
        assert.equal(await store.uploads.append(VALID_ID, bufferStream('def'), { offset: 3 }), 6);
        const result = await store.uploads.commit(VALID_ID, digestOf('abcdef'));
        assert.equal(result.size, 6);
        return [digestOf('abcdef')];
      });

      test('a failed append stream leaves the session at its previous size', async ({ store }) => {
        const total = 4 * MiB;
        const digest = patternDigest(total, { seed: 14 });
        await store.uploads.create(VALID_ID);
        await store.uploads.append(VALID_ID, patternStream(MiB, { seed: 14 }), { offset: 0 });
        const boom = new Error('connection reset');
        const failing = patternStream(3 * MiB, { seed: 99, start: MiB, failAfter: MiB + 3, failWith: boom });
        await assert.rejects(store.uploads.append(VALID_ID, failing, { offset: MiB }), (err) => err === boom);
        assert.equal(await store.uploads.size(VALID_ID), MiB);
        const rest = patternStream(3 * MiB, { seed: 14, start: MiB });
        assert.equal(await store.uploads.append(VALID_ID, rest, { offset: MiB }), total);
        assert.equal((await store.uploads.commit(VALID_ID, digest)).size, total);
        assert.deepEqual(await hashStream(await store.open(digest)), { digest, size: total });
        return [digest];
      });

      test('append past maxBytes or aborted leaves the previous size', async ({ store }) => {
        await store.uploads.create(VALID_ID);
        await store.uploads.append(VALID_ID, bufferStream('head'), { offset: 0 });
        const big = patternStream(8 * MiB, { seed: 15 });
        await rejectsWith(store.uploads.append(VALID_ID, big, { offset: 4, maxBytes: MiB }), TooLargeError, store);
        assert.ok(big.pulled < 8 * MiB);
        assert.equal(await store.uploads.size(VALID_ID), 4);
        const controller = new AbortController();
        const stalled = patternStream(8 * MiB, { seed: 15, stallAfter: MiB, onStall: () => controller.abort() });
        await assert.rejects(store.uploads.append(VALID_ID, stalled, { offset: 4, signal: controller.signal }), {
          name: 'AbortError',
        });
        assert.equal(await store.uploads.size(VALID_ID), 4);
        await store.uploads.append(VALID_ID, bufferStream('tail'), { offset: 4, maxBytes: 4 });
        const result = await store.uploads.commit(VALID_ID, digestOf('headtail'));
        assert.equal(result.size, 8);
        return [digestOf('headtail')];
      });

      test('racing appends at the same offset: one wins, the other is rejected', async ({ store }) => {
        await store.uploads.create(VALID_ID);
        const results = await Promise.allSettled([
          store.uploads.append(VALID_ID, patternStream(2 * MiB, { seed: 16 }), { offset: 0 }),
          store.uploads.append(VALID_ID, patternStream(2 * MiB, { seed: 17 }), { offset: 0 }),
        ]);
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r) => r.status === 'rejected');
        assert.equal(won.length, 1);
        assert.equal(lost.length, 1);
        assert.ok((lost[0] as PromiseRejectedResult).reason instanceof UploadOffsetError);
        assert.equal(await store.uploads.size(VALID_ID), 2 * MiB);
        const winner = results[0].status === 'fulfilled' ? 16 : 17;
        const digest = patternDigest(2 * MiB, { seed: winner });
        await store.uploads.commit(VALID_ID, digest);
        return [digest];
      });

      test('commit with a wrong digest fails, publishes nothing and removes the session', async ({ store }) => {
        await store.uploads.create(VALID_ID);
        await store.uploads.append(VALID_ID, bufferStream('actual bytes'), { offset: 0 });
        const wrong = digestOf('other bytes');
        const err = await rejectsWith(store.uploads.commit(VALID_ID, wrong), DigestMismatchError, store);
        assert.equal(err.expected, wrong);
        assert.equal(err.actual, digestOf('actual bytes'));
        assert.equal(await store.uploads.size(VALID_ID), null);
        await assertAbsent(store, wrong);
        await assertAbsent(store, digestOf('actual bytes'));
      });

      test('commit with a wrong expectedSize fails and keeps the session', async ({ store }) => {
        await store.uploads.create(VALID_ID);
        await store.uploads.append(VALID_ID, bufferStream('abc'), { offset: 0 });
        const err = await rejectsWith(
          store.uploads.commit(VALID_ID, digestOf('abcd'), { expectedSize: 4 }),
          SizeMismatchError,
          store,
        );
        assert.equal(err.expected, 4);
        assert.equal(err.actual, 3);
        assert.equal(await store.uploads.size(VALID_ID), 3);
        await store.uploads.append(VALID_ID, bufferStream('d'), { offset: 3 });
        await store.uploads.commit(VALID_ID, digestOf('abcd'), { expectedSize: 4 });
        return [digestOf('abcd')];
      });

      test('commit of content already stored reports created:false', async ({ store }) => {
        const { digest } = await store.put(bufferStream('already here'));
        await store.uploads.create(VALID_ID);
        await store.uploads.append(VALID_ID, bufferStream('already here'), { offset: 0 });
        assert.deepEqual(await store.uploads.commit(VALID_ID, digest), { digest, size: 12, created: false });
        assert.equal(await store.uploads.size(VALID_ID), null);
        return [digest];
      });

      test('unknown sessions: UploadNotFoundError for append and commit', async ({ store }) => {
        await rejectsWith(
          store.uploads.append(VALID_ID, bufferStream('x'), { offset: 0 }),
          UploadNotFoundError,
          store,
        );
        await rejectsWith(store.uploads.commit(VALID_ID, digestOf('x')), UploadNotFoundError, store);
        assert.equal(await store.uploads.size(VALID_ID), null, 'append did not create the session');
      });

      test('abort removes a session and ignores absent ones', async ({ store }) => {
        await store.uploads.create(VALID_ID);
        await store.uploads.append(VALID_ID, bufferStream('abandoned'), { offset: 0 });
        await store.uploads.abort(VALID_ID);
        assert.equal(await store.uploads.size(VALID_ID), null);
        await store.uploads.abort(VALID_ID);
        await store.uploads.abort(OTHER_ID);
        await store.uploads.create(VALID_ID);
        assert.equal(await store.uploads.size(VALID_ID), 0, 'the id can be reused');
        await store.uploads.abort(VALID_ID);
      });

      test('list shows every session with its size and modifiedAt', async ({ store }) => {
        await store.uploads.create(VALID_ID);
        await store.uploads.create(OTHER_ID);
        await store.uploads.append(OTHER_ID, bufferStream('12345'), { offset: 0 });
        assert.deepEqual(await listUploads(store), [
          { id: VALID_ID, size: 0 },
          { id: OTHER_ID, size: 5 },
        ].sort((a, b) => a.id.localeCompare(b.id)));
        for await (const u of store.uploads.list()) {
          assert.ok(Math.abs(u.modifiedAt - Date.now()) < 10 * 60 * 1000);
        }
        await store.uploads.abort(VALID_ID);
        await store.uploads.abort(OTHER_ID);
      });

      test('rejects invalid upload ids in every method', async ({ store }) => {
        for (const bad of BAD_IDS) {
          await rejectsWith(store.uploads.create(bad), InvalidUploadIdError, store);
          await rejectsWith(store.uploads.size(bad), InvalidUploadIdError, store);
          await rejectsWith(store.uploads.append(bad, bufferStream('x'), { offset: 0 }), InvalidUploadIdError, store);
          await rejectsWith(store.uploads.commit(bad, digestOf('x')), InvalidUploadIdError, store);
          await rejectsWith(store.uploads.abort(bad), InvalidUploadIdError, store);
        }
        await store.uploads.create('a'.repeat(128));
        await store.uploads.create('A-z_0-9x');
        assert.equal((await listUploads(store)).length, 2);
        await store.uploads.abort('a'.repeat(128));
        await store.uploads.abort('A-z_0-9x');
      });
    });

    describe('sweep', () => {
      test('sweep removes temp objects older than the threshold', async (f, t) => {
        if (f.plantTempObject === undefined) {
          t.skip('the fixture has no plantTempObject');
          return;
        }
        await f.plantTempObject(3 * 60 * 60 * 1000);
        await f.plantTempObject(60 * 1000);
        assert.equal(await f.store.sweep(60 * 60 * 1000), 1, 'only the 3-hour-old temp object');
        assert.equal(await f.store.sweep(0), 1, 'olderThanMs 0 removes all');
        assert.equal(await f.store.sweep(0), 0);
      });

      test('sweep leaves blobs, sessions and writes in progress alone', async ({ store }) => {
        const { digest } = await store.put(bufferStream('kept'));
        await store.uploads.create(VALID_ID);
        let stalled!: () => void;
        const reachedStall = new Promise<void>((resolve) => (stalled = resolve));
        const size = 3 * MiB;
        const source = patternStream(size, { seed: 18, stallAfter: MiB, onStall: () => stalled() });
        const pending = store.put(source);
        await reachedStall;
        await store.sweep(0);
        source.release();
        const result = await pending;
        assert.equal(result.digest, patternDigest(size, { seed: 18 }));
        assert.equal((await readAll(await store.open(digest))).toString(), 'kept');
        assert.equal(await store.uploads.size(VALID_ID), 0);
        await store.uploads.abort(VALID_ID);
        return [digest, result.digest];
      });
    });
  });
}
