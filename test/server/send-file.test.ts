/**
 * The blob-serving fast path (server/send-file.ts): bytes copied from a BlobFile into real HTTP responses through
 * reused buffers. What it must get right: every byte of every range, concurrent responses never seeing each
 * other's (recycled) buffers, a client that leaves early, and a file shorter than promised (the client must see a
 * broken body, never a clean end). Then the same path through the app: a record/file size disagreement is a 500.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, truncate } from 'node:fs/promises';
import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createBlobStore } from '../../src/blobs/index.ts';
import { fsLayout } from '../../src/blobs/fs.ts';
import { parseDigest } from '../../src/blobs/digest.ts';
import type { BlobFile, BlobStore } from '../../src/blobs/types.ts';
import { copyFileRange } from '../../src/server/send-file.ts';
import { patternBytes, patternStream } from '../blobs/suite.ts';
import { startServer } from '../helpers/server.ts';

const MiB = 1024 * 1024;

/** GET → the body and whether it ended cleanly (false: the connection broke off). */
function download(url: string, opts: { stopAfter?: number; slow?: boolean } = {}): Promise<{ body: Buffer; clean: boolean }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        n += c.length;
        // A slow reader: the socket fills up, so the server's writes stay pending while it reads on.
        if (opts.slow && chunks.length % 8 === 1) {
          res.pause();
          setTimeout(() => res.resume(), 30);
        }
        if (opts.stopAfter !== undefined && n >= opts.stopAfter) res.destroy();
      });
      res.on('end', () => resolve({ body: Buffer.concat(chunks), clean: true }));
      res.on('close', () => resolve({ body: Buffer.concat(chunks), clean: res.complete }));
      res.on('error', () => {});
    }).on('error', reject);
  });
}

describe('copyFileRange', () => {
  let root: string;
  let store: BlobStore;
  let server: Server;
  let base: string;
  const digests = new Map<number, string>();
  const outcomes: { path: string; result: string }[] = [];

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'granary-send-file-'));
    store = await createBlobStore({ driver: 'fs', root });
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      digests.set(seed, (await store.put(patternStream(3 * MiB + 1234, { seed }))).digest);
    }
    // GET /<seed>/<start>/<end>[/<claimed end>]: serves [start, end) of that blob; a claimed end past the file
    // makes the server promise more bytes than the file has.
    server = createServer((req, res) => {
      const [seed, start, end, claimed] = req.url!.slice(1).split('/').map(Number);
      void (async () => {
        const file: BlobFile = await store.openFile!(digests.get(seed!)!);
        res.writeHead(200, { 'content-length': String((claimed ?? end!) - start!) });
        try {
          await copyFileRange(file, start!, claimed ?? end!, res);
          outcomes.push({ path: req.url!, result: 'ok' });
        } catch (e) {
          outcomes.push({ path: req.url!, result: (e as Error).message });
        } finally {
          await file.close();
        }
      })();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await store.close();
    await rm(root, { recursive: true, force: true });
  });

  it('sends whole blobs and ranges that cross chunk boundaries, byte for byte', async () => {
    const size = 3 * MiB + 1234;
    for (const [start, end] of [
      [0, size],
      [MiB - 3, 2 * MiB + 5],
      [size - 1, size],
      [7, 7],
    ] as const) {
      const { body, clean } = await download(`${base}/1/${start}/${end}`);
      assert.ok(clean, `range ${start}-${end} ended cleanly`);
      assert.deepEqual(body, patternBytes(1, start, end - start), `range ${start}-${end}`);
    }
  });

  it('keeps concurrent responses apart while their buffers are recycled', async () => {
    const size = 3 * MiB + 1234;
    const runs = await Promise.all(
      [2, 3, 4, 5, 6, 2, 3, 4].map(async (seed, i) => ({ seed, ...(await download(`${base}/${seed}/0/${size}`, { slow: i % 2 === 0 })) })),
    );
    for (const r of runs) {
      assert.ok(r.clean);
      assert.ok(r.body.equals(patternBytes(r.seed, 0, size)), `blob ${r.seed} intact`);
    }
  });

  it('stops quietly when the client leaves, and serves the next request', async () => {
    const size = 3 * MiB + 1234;
    outcomes.length = 0;
    const partial = await download(`${base}/5/0/${size}`, { stopAfter: 1 });
    assert.equal(partial.clean, false);
    for (let i = 0; i < 50 && outcomes.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(outcomes, [{ path: `/5/0/${size}`, result: 'ok' }], 'a client leaving is no error');
    const next = await download(`${base}/5/0/${size}`);
    assert.ok(next.clean && next.body.equals(patternBytes(5, 0, size)));
  });

  it('breaks the response off when the file is shorter than promised', async () => {
    const size = 3 * MiB + 1234;
    outcomes.length = 0;
    const r = await download(`${base}/6/0/${size}/${size + 10}`);
    assert.equal(r.clean, false, 'the client must not see a clean end');
    assert.equal(r.body.length, size);
    for (let i = 0; i < 50 && outcomes.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(outcomes[0]?.result ?? '', /10 bytes short/);
  });
});

describe('serving a blob whose file disagrees with its record', () => {
  it('answers 500 in the error envelope instead of a short body', async () => {
    const srv = await startServer();
    try {
      assert.equal((await srv.api('POST', '/repositories', { name: 'files', format: 'generic' })).status, 201);
      const put = await srv.fetch('/generic/files/a.bin', { method: 'PUT', body: Buffer.alloc(4096, 1) });
      assert.equal(put.status, 201);
      const ok = await srv.fetch('/generic/files/a.bin');
      assert.equal(ok.status, 200);
      const digest = ok.headers.get('etag')!.replaceAll('"', '');
      assert.equal((await ok.arrayBuffer()).byteLength, 4096);
      await truncate(fsLayout(join(srv.dataDir, 'blobs')).blob(parseDigest(digest)), 100);
      const res = await srv.fetch('/generic/files/a.bin');
      assert.equal(res.status, 500);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'INTERNAL');
    } finally {
      await srv.close();
    }
  });
});
