/** memflow.defaultRepository: the memflow-registry API of one repository at the server root, as memflowup expects. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../../helpers/server.ts';

describe('memflow API at the server root', () => {
  let srv: TestServer;
  let plain: TestServer;
  before(async () => {
    srv = await startServer({
      config: { memflow: { defaultRepository: 'plugins' }, repositories: [{ name: 'plugins', format: 'generic', anonymousRead: true }] },
    });
    plain = await startServer();
  });
  after(async () => {
    await srv.close();
    await plain.close();
  });

  it('answers /health, /plugins and /files at the root for the default repository', async () => {
    const h = await srv.fetch('/health', { auth: null });
    assert.equal(h.status, 200);
    assert.equal(await h.json(), 'Ok');
    const p = await srv.fetch('/plugins', { auth: null });
    assert.deepEqual(await p.json(), { plugins: [] });
    assert.equal((await srv.fetch(`/files/${'a'.repeat(64)}`, { auth: null })).status, 404);
    // the per-repository mount is still there
    assert.equal((await srv.fetch('/memflow/plugins/health', { auth: null })).status, 200);
    // writes at the root need credentials like anywhere else
    assert.equal((await srv.fetch('/files', { method: 'POST', auth: null })).status, 401);
  });

  it('serves nothing at the root without the setting', async () => {
    assert.equal((await plain.fetch('/plugins', { auth: null })).status, 404);
  });
});
