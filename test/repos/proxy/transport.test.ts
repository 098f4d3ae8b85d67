/**
 * How a proxy reaches its upstream: HTTPS with a private CA (refused without `caFile`, accepted with it or with
 * `insecureSkipVerify`), and through an HTTP forward proxy named by HTTP_PROXY (undici's EnvHttpProxyAgent).
 * The certificate is made by the real openssl CLI; skipped, with the reason, when openssl is missing.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttp, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { proxyRead } from '../../../src/repos/proxy/index.ts';
import { startServer, type TestServer } from '../../helpers/server.ts';
import { OPENSSL_MISSING } from '../../trust/openssl.ts';

let s: TestServer;
let dir: string;

async function body(r: Awaited<ReturnType<typeof proxyRead>>): Promise<string> {
  assert.equal(r.kind, 'cached');
  const chunks: Buffer[] = [];
  for await (const c of await s.services.blobs.open((r as { asset: { digest: string } }).asset.digest)) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

const close = (srv: Server) =>
  new Promise((r) => {
    srv.closeAllConnections();
    srv.close(r);
  });

describe('proxy transport', () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'granary-proxy-tls-'));
    s = await startServer();
  });
  after(async () => {
    await s?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('trusts an upstream certificate only through caFile or insecureSkipVerify', { skip: OPENSSL_MISSING }, async () => {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const tls = createHttps({ key: await readFile(key), cert: await readFile(cert) }, (_req, res) => res.writeHead(200).end('over tls'));
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
    const upstream = `https://127.0.0.1:${(tls.address() as AddressInfo).port}`;
    try {
      const mk = (name: string, proxy: Record<string, unknown>) =>
        s.services.repos.create({ name, format: 'oci', kind: 'proxy', upstream, options: { proxy: { retries: 0, ...proxy } } }, 'test');
      const plain = await mk('tls-plain', {});
      await assert.rejects(proxyRead(s.services, plain, { path: 'f', mutability: 'immutable', wait: true }), /unreachable/);
      assert.equal(await body(await proxyRead(s.services, await mk('tls-ca', { caFile: cert }), { path: 'f', mutability: 'immutable', wait: true })), 'over tls');
      assert.equal(await body(await proxyRead(s.services, await mk('tls-skip', { insecureSkipVerify: true }), { path: 'f', mutability: 'immutable', wait: true })), 'over tls');
    } finally {
      await close(tls as unknown as Server);
    }
  });

  it('goes through the forward proxy named by HTTP_PROXY', async () => {
    const origin = createHttp((req, res) => res.writeHead(200).end(`origin saw ${req.url}`));
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    const tunnels: string[] = [];
    // A minimal forward proxy: undici tunnels every request through CONNECT, http targets included.
    const fwd = createHttp((_req, res) => res.writeHead(405).end());
    fwd.on('connect', (req, client: Socket, head: Buffer) => {
      tunnels.push(req.url!);
      const [host, port] = req.url!.split(':');
      const up = connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        up.write(head);
        up.pipe(client).pipe(up);
      });
      up.on('error', () => client.destroy());
      client.on('error', () => up.destroy());
    });
    await new Promise<void>((r) => fwd.listen(0, '127.0.0.1', r));
    const saved = { HTTP_PROXY: process.env.HTTP_PROXY, NO_PROXY: process.env.NO_PROXY };
    process.env.HTTP_PROXY = `http://127.0.0.1:${(fwd.address() as AddressInfo).port}`;
    delete process.env.NO_PROXY;
    try {
      const upstream = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
      const r = await s.services.repos.create({ name: 'via-proxy', format: 'oci', kind: 'proxy', upstream, options: { proxy: { retries: 0 } } }, 'test');
      assert.equal(await body(await proxyRead(s.services, r, { path: 'a/b', mutability: 'immutable', wait: true })), 'origin saw /a/b');
      assert.deepEqual(tunnels, [new URL(upstream).host]);
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
      else process.env[k] = v;
      await close(fwd);
      await close(origin);
    }
  });
});
