/**
 * The single-flight spool (src/repos/proxy/flight.ts) on its own: `copyTo` tails the spool into a writable as it
 * grows and holds the last byte until commit; a failed flight cuts every copy short; the name handed to the blob
 * store for adoption is a second one, so a client joining after adoption (before commit) still opens the spool.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Flight } from '../../../src/repos/proxy/flight.ts';

const MiB = 1024 * 1024;

/** A writable that keeps what it gets and says whether it ended cleanly. */
function sink(): { w: Writable; bytes: () => Buffer; done: Promise<'ended' | 'destroyed'> } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(Buffer.from(c)); // a copy: the sender recycles its buffers
      cb();
    },
  });
  const done = new Promise<'ended' | 'destroyed'>((resolve) => {
    w.on('finish', () => resolve('ended'));
    w.on('close', () => resolve(w.writableFinished ? 'ended' : 'destroyed'));
    w.on('error', () => {});
  });
  return { w, bytes: () => Buffer.concat(chunks), done };
}

const pattern = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff));

describe('proxy flight spool', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'granary-flight-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('copies the spool as it grows, holding the last byte until commit; late joiners after adoption still read it', async () => {
    const data = pattern(3 * MiB + 11);
    const body = new PassThrough();
    const f = new Flight(dir);
    const spooled = f.spool(body, { hash: 'sha256' });
    const early = sink();
    const copy = f.copyTo(early.w, data.length);
    body.write(data.subarray(0, MiB));
    await new Promise((r) => setTimeout(r, 50));
    body.end(data.subarray(MiB));
    const sp = await spooled;
    assert.equal(sp.size, data.length);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(early.bytes().length, data.length - 1, 'everything but the last byte before commit');
    // Adoption takes the handed-over name away; the spool's own name stays until the flight is over.
    const handed = await f.handOver();
    await rm(handed);
    const late = sink();
    const lateCopy = f.copyTo(late.w, data.length);
    const lateStream = f.reader(true);
    f.commit();
    await Promise.all([copy, lateCopy]);
    assert.equal(await early.done, 'ended');
    assert.equal(await late.done, 'ended');
    assert.ok(early.bytes().equals(data) && late.bytes().equals(data));
    const streamed: Buffer[] = [];
    for await (const c of lateStream) streamed.push(c as Buffer);
    assert.ok(Buffer.concat(streamed).equals(data));
    await f.over;
    assert.deepEqual((await readdir(dir)).filter((n) => n.endsWith('.spool')), [], 'spool removed once the flight is over');
  });

  it('cuts every copy short when the upstream breaks off', async () => {
    const f = new Flight(dir);
    const body = new Readable({ read() {} });
    const spooled = f.spool(body);
    const out = sink();
    const copy = f.copyTo(out.w, 2 * MiB);
    body.push(pattern(MiB));
    await new Promise((r) => setTimeout(r, 50));
    body.destroy(new Error('upstream went away'));
    await assert.rejects(spooled, /upstream went away/);
    f.fail(new Error('upstream went away'));
    await assert.rejects(copy, /upstream went away/);
    assert.equal(await out.done, 'destroyed');
    assert.ok(out.bytes().length < 2 * MiB);
  });
});
