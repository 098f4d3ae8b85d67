/**
 * Built-in HTTPS (`tls.certFile` / `tls.keyFile`): the server answers over TLS with the configured certificate and
 * not in plain HTTP, the OCI token realm says https, a renewed certificate is served to new connections without a
 * restart while a broken renewal keeps the old one, and half or unreadable TLS settings stop `granary serve` with
 * exit 2 naming the key. Real clients over TLS (skopeo, go) are in tls-clients.test.ts. Certificates come from the
 * `openssl` CLI; the tests skip, saying so, without it.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { fetch } from 'undici';
import { loadConfig, ConfigError } from '../../src/config/load.ts';
import { createServices } from '../../src/server/bootstrap.ts';
import { buildApp } from '../../src/server/app.ts';
import { loadTls } from '../../src/server/tls.ts';
import { startServer, ADMIN_TOKEN, type TestServer } from '../helpers/server.ts';
import { stopChild } from '../helpers/processes.ts';
import { until } from '../replication/helpers.ts';
import { makeCa, missingOpenssl, presentedName, type CertFiles, type TestCa } from './tls-certs.ts';

const BIN = fileURLToPath(new URL('../../bin/granary', import.meta.url));

let work: string;
let ca: TestCa;
let first: CertFiles;
let second: CertFiles;

describe('built-in TLS', { skip: missingOpenssl(), timeout: 120_000 }, () => {
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'granary-tls-'));
    ca = makeCa(work);
    first = ca.issue('granary-test-1', 1001);
    second = ca.issue('granary-test-2', 1002);
  });
  after(async () => {
    await ca?.agent.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  describe('a server with tls.certFile and tls.keyFile', () => {
    let s: TestServer;
    let port: number;
    before(async () => {
      s = await startServer({ config: { tls: first } });
      port = Number(new URL(s.url).port);
      await s.services.repos.create({ name: 'private', format: 'oci', anonymousRead: false }, 'test');
    });
    after(async () => s?.close());

    it('answers over HTTPS with the configured certificate, trusted through the CA', async () => {
      assert.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/, 'listen() reports an https address');
      const res = await fetch(`${s.url}/api/v1/me`, { dispatcher: ca.agent, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { user: string }).user, 'admin');
      assert.equal(await presentedName(port, ca.ca), 'granary-test-1');
      await assert.rejects(fetch(`${s.url}/healthz`), 'a client that does not trust the CA refuses the certificate');
    });

    it('does not answer plain HTTP on the same port', async () => {
      await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(10_000) }));
    });

    it('puts an https token realm in the OCI 401 challenge', async () => {
      const res = await fetch(`${s.url}/v2/private/app/tags/list`, { dispatcher: ca.agent });
      assert.equal(res.status, 401);
      await res.arrayBuffer();
      const challenge = res.headers.get('www-authenticate') ?? '';
      assert.match(challenge, new RegExp(`^Bearer realm="https://127\\.0\\.0\\.1:${port}/v2/token"`), challenge);
    });
  });

  describe('certificate reload', () => {
    const lines: string[] = [];
    let close: () => Promise<void>;
    let port: number;
    let files: CertFiles;
    /** Replaces a file the way renewal tools do: written beside it, then renamed over it. */
    const replace = (target: string, content: string | Buffer) => {
      writeFileSync(`${target}.new`, content);
      renameSync(`${target}.new`, target);
    };
    const logged = (msg: string) => lines.filter((l) => (JSON.parse(l) as { msg: string }).msg === msg);

    before(async () => {
      const dir = await mkdtemp(join(work, 'reload-'));
      files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
      copyFileSync(first.certFile, files.certFile);
      copyFileSync(first.keyFile, files.keyFile);
      const config = loadConfig({ base: { dataDir: join(dir, 'data'), logLevel: 'info', auth: { adminToken: ADMIN_TOKEN }, tls: { ...files, reloadSeconds: 1 } }, env: {} });
      const started = await createServices(config, pino({ level: 'info' }, { write: (l: string) => void lines.push(l) }));
      const app = await buildApp(started.services);
      port = Number(new URL(await app.listen({ host: '127.0.0.1', port: 0 })).port);
      close = async () => {
        await app.close();
        await started.close();
      };
    });
    after(async () => close?.());

    it('serves a replaced certificate to new connections without a restart', async () => {
      assert.equal(await presentedName(port, ca.ca), 'granary-test-1');
      replace(files.keyFile, readFileSync(second.keyFile));
      replace(files.certFile, readFileSync(second.certFile));
      await until('the second certificate to be presented', async () => ((await presentedName(port, ca.ca)) === 'granary-test-2' ? true : undefined), 10_000);
      assert.ok(logged('tls certificate reloaded').length >= 1, 'the reload is logged');
      const res = await fetch(`https://127.0.0.1:${port}/healthz`, { dispatcher: ca.agent });
      assert.equal(res.status, 200);
    });

    it('keeps the current certificate when the replacement does not load, and warns', async () => {
      replace(files.certFile, readFileSync(first.certFile));
      replace(files.keyFile, '-----BEGIN PRIVATE KEY-----\nnot a key at all\n-----END PRIVATE KEY-----\n');
      const failure = await until('a warning about the broken key', async () =>
        logged('tls reload failed; still serving the previous certificate').find((l) => l.includes('tls.keyFile') && l.includes('not a PEM private key')),
      10_000);
      assert.equal((JSON.parse(failure) as { level: number }).level, 40, 'logged at warn');
      assert.equal(await presentedName(port, ca.ca), 'granary-test-2', 'still the last good certificate');
      const res = await fetch(`https://127.0.0.1:${port}/healthz`, { dispatcher: ca.agent });
      assert.equal(res.status, 200, 'the server keeps answering');
    });
  });

  describe('configuration errors', () => {
    it('refuses one file without the other, naming the missing key', () => {
      const fails = (tls: Record<string, unknown>, key: string) => {
        assert.throws(() => loadConfig({ base: { tls }, env: {} }), (e) => e instanceof ConfigError && e.key === key && e.message.includes(key));
      };
      fails({ certFile: first.certFile }, 'tls.keyFile');
      fails({ keyFile: first.keyFile }, 'tls.certFile');
    });

    it('resolves relative paths against the working directory, like dataDir', () => {
      const c = loadConfig({ base: {}, env: { GRANARY_TLS_CERT_FILE: 'certs/tls.crt', GRANARY_TLS_KEY_FILE: 'certs/tls.key' }, cwd: work });
      assert.equal(c.tls.certFile, join(work, 'certs', 'tls.crt'));
      assert.equal(c.tls.keyFile, join(work, 'certs', 'tls.key'));
      assert.equal(c.tls.reloadSeconds, 60);
    });

    it('names the key of an unreadable, invalid or mismatched file', () => {
      const fails = (tls: CertFiles, key: string, re: RegExp) => {
        assert.throws(() => loadTls({ ...tls, reloadSeconds: 0 }), (e) => e instanceof ConfigError && e.key === key && re.test(e.message));
      };
      fails({ certFile: join(work, 'missing.crt'), keyFile: first.keyFile }, 'tls.certFile', /cannot read .*missing\.crt/);
      fails({ certFile: first.certFile, keyFile: join(work, 'missing.key') }, 'tls.keyFile', /cannot read .*missing\.key/);
      fails({ certFile: first.keyFile, keyFile: first.keyFile }, 'tls.certFile', /not a PEM certificate/);
      fails({ certFile: first.certFile, keyFile: second.keyFile }, 'tls.keyFile', /not the private key of the certificate/);
    });

    it('`granary serve` exits 2 naming the key, before creating anything', () => {
      const serve = (args: string[]) => {
        const dataDir = join(work, `data-${Math.random().toString(36).slice(2)}`);
        const r = spawnSync(BIN, ['serve', '--port', '0', '--data-dir', dataDir, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work }, timeout: 60_000 });
        return { ...r, dataDir };
      };
      const half = serve(['--tls-cert', first.certFile]);
      assert.equal(half.status, 2, half.stderr);
      assert.match(half.stderr, /granary: config: tls\.keyFile: is required when tls\.certFile is set/);
      const unreadable = serve(['--tls-cert', join(work, 'missing.crt'), '--tls-key', first.keyFile]);
      assert.equal(unreadable.status, 2, unreadable.stderr);
      assert.match(unreadable.stderr, /granary: config: tls\.certFile: cannot read/);
      assert.doesNotMatch(unreadable.stderr, /First start/, 'no admin user was created and lost');
    });

    it('`granary serve --tls-cert --tls-key` listens on https and says so', async () => {
      const child = spawn(BIN, ['serve', '--port', '0', '--data-dir', join(work, 'serve-data'), '--tls-cert', first.certFile, '--tls-key', first.keyFile], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work, GRANARY_ADMIN_TOKEN: ADMIN_TOKEN },
      });
      try {
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
        const line = await until('the "granary listening" line', async () => {
          if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}`);
          return out.split('\n').find((l) => l.includes('"granary listening"'));
        }, 30_000);
        const { address, tls } = JSON.parse(line) as { address: string; tls: boolean };
        assert.match(address, /^https:\/\/127\.0\.0\.1:\d+$/);
        assert.equal(tls, true);
        assert.equal(await presentedName(Number(new URL(address).port), ca.ca), 'granary-test-1');
      } finally {
        await stopChild(child);
      }
    });
  });
});
