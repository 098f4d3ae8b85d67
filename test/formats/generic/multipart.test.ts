/** Generic repositories: multipart POST uploads (as `curl -F` sends them) and download by digest. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type TestServer } from '../../helpers/server.ts';

const sha256 = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

describe('generic multipart uploads and download by digest', () => {
  let srv: TestServer;
  let dir: string;
  before(async () => {
    srv = await startServer();
    dir = await mkdtemp(join(tmpdir(), 'granary-multipart-'));
    await srv.api('POST', '/repositories', { name: 'files', format: 'generic' });
    await srv.api('POST', '/repositories', { name: 'small', format: 'generic', options: { maxUploadBytes: 1024 } });
  });
  after(async () => {
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('stores the file part of a form, with meta.* fields, as curl -F sends it', async () => {
    const body = Buffer.from('report contents\n'.repeat(1000));
    await writeFile(join(dir, 'report.txt'), body);
    const { stdout } = await promisify(execFile)('curl', [
      '-sS', '-H', `Authorization: Bearer ${srv.config.auth.adminToken}`,
      '-F', 'meta.build=42', '-F', `file=@${join(dir, 'report.txt')};type=text/plain`,
      `${srv.url}/generic/files/reports/r.txt`,
    ]);
    const r = JSON.parse(stdout) as { digest: string; size: number; metadata: Record<string, unknown> };
    assert.equal(r.digest, sha256(body));
    assert.equal(r.size, body.length);
    assert.equal(r.metadata.build, '42');
    const got = await srv.fetch('/generic/files/reports/r.txt');
    assert.equal(got.headers.get('content-type'), 'text/plain');
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(body));
  });

  it('downloads by digest', async () => {
    const body = Buffer.from('find me by content');
    await srv.fetch('/generic/files/some/where.bin', { method: 'PUT', body });
    const r = await srv.fetch(`/generic/files/?digest=${sha256(body)}`);
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'find me by content');
    assert.equal((await srv.fetch(`/generic/files/?digest=${sha256(Buffer.from('nope'))}`)).status, 404);
    assert.equal((await srv.fetch('/generic/files/?digest=sha256:../../etc')).status, 400);
  });

  it('refuses a form without a file part, a non-multipart POST and a file over the repository limit', async () => {
    const form = new FormData();
    form.append('meta.x', '1');
    assert.equal((await srv.fetch('/generic/files/a', { method: 'POST', body: form })).status, 400);
    assert.equal((await srv.fetch('/generic/files/a', { method: 'POST', body: 'raw', headers: { 'content-type': 'text/plain' } })).status, 400);
    const big = new FormData();
    big.append('file', new Blob([Buffer.alloc(4096, 1)]), 'big.bin');
    const r = await srv.fetch('/generic/small/big.bin', { method: 'POST', body: big });
    assert.equal(r.status, 413);
    assert.equal((await srv.fetch('/generic/small/big.bin')).status, 404);
    const exact = new FormData();
    exact.append('file', new Blob([Buffer.alloc(1024, 2)]), 'exact.bin');
    const ok = await srv.fetch('/generic/small/exact.bin', { method: 'POST', body: exact });
    assert.equal(ok.status, 201);
    assert.equal(((await ok.json()) as { size: number }).size, 1024);
  });
});
