/** Garbage collection keeps every blob an asset names and young blobs, and removes the rest. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { collectGarbage } from '../../src/gc/collect.ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startServer, type TestServer } from '../helpers/server.ts';

const GRANARY = fileURLToPath(new URL('../../bin/granary', import.meta.url));

describe('gc', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer();
    await srv.api('POST', '/repositories', { name: 'g', format: 'generic' });
  });
  after(() => srv.close());

  const age = async (digest: string, ms: number) => {
    const hex = digest.slice('sha256:'.length);
    const t = new Date(Date.now() - ms);
    await utimes(join(srv.dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex), t, t);
  };

  it('removes only unreferenced blobs older than the grace period', async () => {
    const kept = (await (await srv.fetch('/generic/g/kept', { method: 'PUT', body: 'kept' })).json()) as { digest: string };
    const replaced = (await (await srv.fetch('/generic/g/file', { method: 'PUT', body: 'version 1' })).json()) as { digest: string };
    await srv.fetch('/generic/g/file', { method: 'PUT', body: 'version 2' });
    const deleted = (await (await srv.fetch('/generic/g/gone', { method: 'PUT', body: 'gone' })).json()) as { digest: string };
    await srv.fetch('/generic/g/gone', { method: 'DELETE' });
    const young = await srv.services.blobs.put(Readable.from([Buffer.from('not yet named')]));
    for (const d of [kept.digest, replaced.digest, deleted.digest]) await age(d, 2 * 3600_000);

    const dry = await collectGarbage(srv.services.meta.db, srv.services.blobs, { dryRun: true });
    assert.deepEqual({ removed: dry.removed, young: dry.young, live: dry.live }, { removed: 2, young: 1, live: 2 });
    assert.ok(await srv.services.blobs.stat(replaced.digest), 'dry run removes nothing');

    const r = await collectGarbage(srv.services.meta.db, srv.services.blobs);
    assert.equal(r.removed, 2);
    assert.equal(r.bytesFreed, 'version 1'.length + 'gone'.length);
    assert.equal(await srv.services.blobs.stat(replaced.digest), null);
    assert.equal(await srv.services.blobs.stat(deleted.digest), null);
    assert.ok(await srv.services.blobs.stat(kept.digest));
    assert.ok(await srv.services.blobs.stat(young.digest));
    assert.equal(await (await srv.fetch('/generic/g/kept')).text(), 'kept');
    assert.equal(await (await srv.fetch('/generic/g/file')).text(), 'version 2');
  });

  it('runs from the CLI beside a live server', async () => {
    const gone = (await (await srv.fetch('/generic/g/cli-gone', { method: 'PUT', body: 'cli gone' })).json()) as { digest: string };
    await srv.fetch('/generic/g/cli-gone', { method: 'DELETE' });
    await age(gone.digest, 2 * 3600_000);
    const { stdout } = await promisify(execFile)(GRANARY, ['gc', '--data-dir', srv.dataDir, '--json'], { env: { ...process.env, GRANARY_ADMIN_TOKEN: '' } });
    const r = JSON.parse(stdout) as { removed: number; dryRun: boolean };
    assert.equal(r.removed, 1);
    assert.equal(await srv.services.blobs.stat(gone.digest), null);
  });
});
