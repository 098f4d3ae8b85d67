/**
 * The format-neutral proxy machinery (src/repos/proxy) against a loopback node:http upstream this test controls:
 * upstream auth (static Bearer, Basic sent up front, the OAuth2 refresh-token grant at a Bearer realm), retries on
 * 5xx, mutable metadata revalidated with If-None-Match after the TTL (304 keeps the copy), serve-stale, the
 * negative cache, bytes reused across paths of one repository, a digest mismatch or an oversized object caching nothing, and validation of `options.proxy`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { getAsset } from '../../../src/meta/assets.ts';
import type { RepositoryRecord } from '../../../src/meta/repos.ts';
import { proxyRead, proxyStats, redactProxySecrets, type ProxyResult } from '../../../src/repos/proxy/index.ts';
import { startServer, type TestServer } from '../../helpers/server.ts';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

let upstream: Server;
let base: string;
let handler: Handler;
const seen: { method: string; url: string; auth?: string; inm?: string }[] = [];
let s: TestServer;

async function text(r: ProxyResult): Promise<string> {
  assert.equal(r.kind, 'cached');
  const chunks: Buffer[] = [];
  for await (const c of await s.services.blobs.open((r as { asset: { digest: string } }).asset.digest)) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

async function repo(name: string, proxy: Record<string, unknown>): Promise<RepositoryRecord> {
  return s.services.repos.create({ name, format: 'oci', kind: 'proxy', upstream: `${base}/${name}`, options: { proxy: { retries: 0, ...proxy } } }, 'test');
}

describe('repos/proxy core', () => {
  before(async () => {
    upstream = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, inm: req.headers['if-none-match'] as string | undefined });
        handler(req, res, body);
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    s = await startServer();
  });
  after(async () => {
    await s?.close();
    upstream?.closeAllConnections();
    await new Promise((r) => upstream?.close(r));
  });

  it('sends a static Bearer token; Basic credentials go up front for requests without a token scope', async () => {
    handler = (_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    const b = await repo('bearer', { auth: { type: 'bearer', token: 'static-token' } });
    await text(await proxyRead(s.services, b, { path: 'a/file.txt', mutability: 'immutable', wait: true }));
    assert.equal(seen.at(-1)!.auth, 'Bearer static-token');
    assert.equal(seen.at(-1)!.url, '/bearer/a/file.txt', 'default upstream URL is <upstream>/<path>');
    process.env.GRANARY_TEST_PROXY_PASSWORD = 'from-the-env';
    const basic = await repo('basic', { auth: { type: 'basic', username: 'u', passwordEnv: 'GRANARY_TEST_PROXY_PASSWORD' } });
    await text(await proxyRead(s.services, basic, { path: 'b.txt', mutability: 'immutable', wait: true }));
    assert.equal(seen.at(-1)!.auth, 'Basic ' + Buffer.from('u:from-the-env').toString('base64'));
  });

  it('exchanges an OAuth2 refresh token at the Bearer realm (as ACR wants) and reuses the access token', async () => {
    let grants = 0;
    handler = (req, res, body) => {
      if (req.url === '/oauth2/token') {
        const form = new URLSearchParams(body);
        assert.equal(form.get('grant_type'), 'refresh_token');
        assert.equal(form.get('refresh_token'), 'the-refresh-token');
        assert.equal(form.get('scope'), 'repository:x:pull');
        grants++;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: 'acr-access', expires_in: 300 }));
      } else if (req.headers.authorization !== 'Bearer acr-access') {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="${base}/oauth2/token",service="acr.test",scope="repository:x:pull"` }).end();
      } else {
        res.writeHead(200).end(`content of ${req.url}`);
      }
    };
    const acr = await repo('acr', { auth: { type: 'oauth2', refreshToken: 'the-refresh-token' } });
    for (const p of ['one', 'two', 'three']) {
      assert.equal(await text(await proxyRead(s.services, acr, { path: p, mutability: 'immutable', scope: 'repository:x:pull', wait: true })), `content of /acr/${p}`);
    }
    assert.equal(grants, 1);
    assert.ok(proxyStats(s.services).tokenFetches >= 1);
  });

  it('follows a redirect to storage without sending the upstream credentials there', async () => {
    handler = (req, res) => {
      if (req.url === '/redir/blob') return res.writeHead(307, { location: '/storage/blob?sig=1' }).end();
      res.writeHead(200).end(`stored at ${req.url}`);
    };
    const r = await repo('redir', { auth: { type: 'bearer', token: 'secret-token' } });
    assert.equal(await text(await proxyRead(s.services, r, { path: 'blob', mutability: 'immutable', wait: true })), 'stored at /storage/blob?sig=1');
    assert.equal(seen.at(-2)!.auth, 'Bearer secret-token');
    assert.equal(seen.at(-1)!.auth, undefined);
  });

  it('retries a 503 with backoff', async () => {
    let n = 0;
    handler = (_req, res) => (++n < 3 ? res.writeHead(503).end() : res.writeHead(200).end('third time'));
    const r = await repo('retry', { retries: 2 });
    assert.equal(await text(await proxyRead(s.services, r, { path: 'x', mutability: 'immutable', wait: true })), 'third time');
    assert.equal(n, 3);
  });

  it('revalidates mutable metadata after the TTL with If-None-Match; 304 keeps the copy; a change replaces it', async () => {
    let version = 'v1';
    handler = (req, res) => {
      const etag = `"${version}"`;
      if (req.headers['if-none-match'] === etag) return res.writeHead(304, { etag }).end();
      res.writeHead(200, { etag, 'content-type': 'application/xml' }).end(`<metadata>${version}</metadata>`);
    };
    const r = await repo('meta', { metadataTtlSeconds: 0 });
    const req = { path: 'g/a/maven-metadata.xml', mutability: 'mutable' as const };
    assert.equal(await text(await proxyRead(s.services, r, req)), '<metadata>v1</metadata>');
    const again = await proxyRead(s.services, r, req);
    assert.equal(seen.at(-1)!.inm, '"v1"');
    assert.equal(await text(again), '<metadata>v1</metadata>');
    version = 'v2';
    assert.equal(await text(await proxyRead(s.services, r, req)), '<metadata>v2</metadata>');
    const a = await getAsset(s.services.meta.db, r.id, req.path);
    assert.equal(a?.mediaType, 'application/xml');

    const fresh = await repo('meta-ttl', { metadataTtlSeconds: 3600 });
    await proxyRead(s.services, fresh, req);
    const count = seen.length;
    version = 'v3';
    assert.equal(await text(await proxyRead(s.services, fresh, req)), '<metadata>v2</metadata>', 'within the TTL: no upstream request');
    assert.equal(seen.length, count);
  });

  it('serves stale mutable metadata when the upstream fails, and remembers 404s', async () => {
    handler = (_req, res) => res.writeHead(200, { etag: '"s1"' }).end('list v1');
    const r = await repo('stale', { metadataTtlSeconds: 0, negativeTtlSeconds: 60 });
    const req = { path: 'mod/@v/list', mutability: 'mutable' as const };
    await proxyRead(s.services, r, req);
    handler = (_req, res) => res.writeHead(500).end();
    const stale = await proxyRead(s.services, r, req);
    assert.equal(stale.kind === 'cached' && stale.stale, true);
    assert.equal(await text(stale), 'list v1');

    handler = (_req, res) => res.writeHead(404).end();
    const before = seen.length;
    for (let i = 0; i < 3; i++) assert.equal((await proxyRead(s.services, r, { path: 'missing.zip', mutability: 'immutable' })).kind, 'not-found');
    assert.equal(seen.length, before + 1, 'one upstream request for three lookups');
  });

  it('reuses bytes cached under another path of the repository after a HEAD, without a second download', async () => {
    const layer = 'a base layer shared by two images';
    const digest = `sha256:${createHash('sha256').update(layer).digest('hex')}`;
    let upstreamDown = false;
    handler = (req, res) => {
      if (upstreamDown) return res.writeHead(503).end();
      if (req.url!.includes('/gone/')) return res.writeHead(404).end();
      res.writeHead(200, { 'content-length': String(layer.length), 'content-type': 'application/octet-stream' }).end(req.method === 'HEAD' ? undefined : layer);
    };
    const r = await repo('shared', {});
    const read = (image: string) => proxyRead(s.services, r, { path: `${image}/_blobs/${digest}`, mutability: 'immutable', expectedDigest: digest, wait: true });
    const first = seen.length;
    assert.equal(await text(await read('one')), layer);
    assert.deepEqual(seen.slice(first).map((x) => `${x.method} ${x.url}`), [`GET /shared/one/_blobs/${digest}`]);

    const second = seen.length;
    assert.equal(await text(await read('two')), layer);
    assert.deepEqual(seen.slice(second).map((x) => `${x.method} ${x.url}`), [`HEAD /shared/two/_blobs/${digest}`], 'confirmed, not downloaded');
    const bound = await getAsset(s.services.meta.db, r.id, `two/_blobs/${digest}`);
    assert.equal(bound?.digest, digest);
    assert.equal((bound?.metadata.proxy as { sameAs?: string }).sameAs, `one/_blobs/${digest}`);

    assert.equal((await read('gone')).kind, 'not-found', 'the upstream says this image has no such blob');
    assert.equal(await getAsset(s.services.meta.db, r.id, `gone/_blobs/${digest}`), null);

    upstreamDown = true;
    assert.equal(await text(await read('three')), layer, 'upstream down: the digest vouches for the cached bytes');
    // Another repository's copy is never reused: a fresh GET (here failing, as the upstream is down).
    const other = await repo('other', {});
    await assert.rejects(proxyRead(s.services, other, { path: `one/_blobs/${digest}`, mutability: 'immutable', expectedDigest: digest, wait: true }), /HTTP 503/);
  });

  it("serves stale cached metadata when the upstream starts refusing the proxy's credentials; nothing uncached", async () => {
    let refuse = false;
    handler = (_req, res) => (refuse ? res.writeHead(401, { 'www-authenticate': 'Basic realm="up"' }).end() : res.writeHead(200, { etag: '"c1"' }).end('index v1'));
    const r = await repo('creds', { auth: { type: 'basic', username: 'u', password: 'rotated-upstream' }, metadataTtlSeconds: 0 });
    const req = { path: 'index.json', mutability: 'mutable' as const };
    assert.equal(await text(await proxyRead(s.services, r, req)), 'index v1');
    refuse = true;
    const stale = await proxyRead(s.services, r, req);
    assert.equal(stale.kind === 'cached' && stale.stale, true, 'expired upstream credentials do not take the mirror down');
    assert.equal(await text(stale), 'index v1');
    await assert.rejects(proxyRead(s.services, r, { path: 'other.json', mutability: 'mutable' }), /refused the proxy's credentials \(HTTP 401\)/);
  });

  it('caches nothing when the bytes do not match the expected digest', async () => {
    handler = (_req, res) => res.writeHead(200).end('not what you asked for');
    const r = await repo('digest', {});
    const expected = `sha256:${createHash('sha256').update('what you asked for').digest('hex')}`;
    await assert.rejects(proxyRead(s.services, r, { path: 'blob', mutability: 'immutable', expectedDigest: expected, wait: true }));
    assert.equal(await getAsset(s.services.meta.db, r.id, 'blob'), null);
    // Not kept under the digest it does have either, and the spool is gone.
    assert.equal(await s.services.blobs.stat(`sha256:${createHash('sha256').update('not what you asked for').digest('hex')}`), null);
    assert.deepEqual(await readdir(join(s.dataDir, 'proxy-spool')), []);
  });

  it('refuses an object larger than limits.uploadBytes, caching nothing', async () => {
    const small = await startServer({ config: { limits: { uploadBytes: 2048 } } });
    try {
      handler = (_req, res) => res.writeHead(200).end(Buffer.alloc(5000, 'x'));
      const r = await small.services.repos.create({ name: 'big', format: 'oci', kind: 'proxy', upstream: `${base}/big`, options: { proxy: { retries: 0 } } }, 'test');
      await assert.rejects(proxyRead(small.services, r, { path: 'blob', mutability: 'immutable', wait: true }), /limit of 2048 bytes/);
      assert.equal(await getAsset(small.services.meta.db, r.id, 'blob'), null);
      assert.equal(await small.services.blobs.stat(`sha256:${createHash('sha256').update(Buffer.alloc(5000, 'x')).digest('hex')}`), null);
      assert.deepEqual(await readdir(join(small.dataDir, 'proxy-spool')), []);
    } finally {
      await small.close();
    }
  });

  it('validates options.proxy at create time, naming the field', async () => {
    await assert.rejects(repo('bad1', { metadataTtlSeconds: -1 }), /options\.proxy\.metadataTtlSeconds/);
    await assert.rejects(repo('bad2', { surprise: true }), /options\.proxy\.surprise: unknown option/);
    await assert.rejects(
      s.services.repos.create({ name: 'hosted-with-proxy', format: 'oci', options: { proxy: {} } }, 'test'),
      /options\.proxy: only proxy repositories have proxy settings/,
    );
  });

  it('redacts inline upstream secrets for display', () => {
    const shown = redactProxySecrets({ proxy: { auth: { type: 'basic', username: 'u', password: 'p' }, retries: 1 }, other: 1 });
    assert.deepEqual(shown, { proxy: { auth: { type: 'basic', username: 'u', password: '***' }, retries: 1 }, other: 1 });
  });
});
