/**
 * Real clients against built-in HTTPS, verifying the certificate against a throwaway CA (never "insecure"):
 * skopeo pushes and inspects an image with `--dest-cert-dir` / `--cert-dir` (its token request goes to the https
 * realm), and `go` downloads a module from a private Go repository with credentials from a .netrc — which `go`
 * only sends over HTTPS, the reason built-in TLS exists. Each part skips, naming the binary, when it is missing.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fetch } from 'undici';
import { startServer, ADMIN_TOKEN, type TestServer } from '../helpers/server.ts';
import { missingClient, writeOciLayout } from '../clients/oci-layout.ts';
import { runTool } from '../clients/run-tool.ts';
import { goWorkspace, missingGo } from '../formats/go/go-run.ts';
import { moduleZip, zipUrl } from '../formats/go/zips.ts';
import { makeCa, missingOpenssl, type TestCa } from './tls-certs.ts';

const ALICE = 'alice:alice-password-1';

let work: string;
let ca: TestCa;
let s: TestServer;
let host: string;

describe('real clients over built-in TLS', { skip: missingOpenssl(), timeout: 600_000 }, () => {
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'granary-tls-clients-'));
    ca = makeCa(work);
    s = await startServer({ config: { tls: ca.issue('granary-test-1', 1001) } });
    host = new URL(s.url).host;
    const { repos, accounts } = s.services;
    await repos.create({ name: 'cr', format: 'oci', anonymousRead: false }, 'test');
    await repos.create({ name: 'gopriv', format: 'go', anonymousRead: false }, 'test');
    const [name, password] = ALICE.split(':');
    await accounts.addUser({ name, password }, 'test');
    await accounts.grant({ user: name, repository: 'cr', role: 'write' }, 'test');
    await accounts.grant({ user: name, repository: 'gopriv', role: 'read' }, 'test');
  });
  after(async () => {
    await s?.close();
    await ca?.agent.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('skopeo copies an image in and inspects it, trusting the CA from a cert dir', { skip: missingClient('skopeo') }, async () => {
    // containers/image reads every *.crt of the directory as a CA to trust.
    const certDir = join(work, 'certs.d');
    mkdirSync(certDir);
    copyFileSync(ca.caFile, join(certDir, 'ca.crt'));
    const authFile = join(work, 'auth.json');
    const src = await writeOciLayout(join(work, 'layout'), { tag: 'v1', layers: 2, seed: 'tls-skopeo' });
    const ref = `docker://${host}/cr/app:v1`;

    const untrusted = await runTool('skopeo', ['copy', '--dest-creds', ALICE, src.ref, ref], { authFile });
    assert.notEqual(untrusted.code, 0, 'without the CA the certificate is refused');
    assert.match(untrusted.stderr, /x509|certificate/i, untrusted.stderr);

    const push = await runTool('skopeo', ['--debug', 'copy', '--dest-cert-dir', certDir, '--dest-creds', ALICE, src.ref, ref], { authFile });
    assert.equal(push.code, 0, push.stderr);
    assert.match(push.stderr, /GET https:\/\/127\.0\.0\.1:\d+\/v2\/token\?/, 'the token came from the https realm');
    assert.doesNotMatch(push.stderr, /http:\/\/127\.0\.0\.1/, 'nothing went over plain HTTP');

    const inspect = await runTool('skopeo', ['inspect', '--cert-dir', certDir, '--creds', ALICE, ref], { authFile });
    assert.equal(inspect.code, 0, inspect.stderr);
    const info = JSON.parse(inspect.stdout) as { Digest: string; Layers: string[] };
    assert.equal(info.Digest, src.top.digest);
    assert.deepEqual(info.Layers, src.images[0].layers.map((l) => l.digest));
  });

  it('go downloads from a private repository with .netrc credentials over HTTPS', { skip: missingGo() }, async () => {
    const mod = 'example.org/mod';
    const put = await fetch(s.url + zipUrl('gopriv', mod, 'v1.0.0'), {
      method: 'PUT',
      body: await moduleZip(mod, 'v1.0.0'),
      headers: { 'content-type': 'application/zip', authorization: `Bearer ${ADMIN_TOKEN}` },
      dispatcher: ca.agent,
    });
    assert.equal(put.status, 201, await put.text());

    const ws = await goWorkspace({ goproxy: `${s.url}/go/gopriv`, nosumdb: '*' });
    try {
      // go matches a .netrc machine against the host name without the port.
      const netrc = join(ws.dir, 'netrc');
      writeFileSync(netrc, `machine 127.0.0.1 login alice password ${ALICE.split(':')[1]}\n`, { mode: 0o600 });
      const env = { SSL_CERT_FILE: ca.caFile, NETRC: netrc };

      const anonymous = await ws.go(['mod', 'download', '-json', `${mod}@v1.0.0`], { env: { SSL_CERT_FILE: ca.caFile, NETRC: join(ws.dir, 'none') } });
      assert.notEqual(anonymous.code, 0, 'the repository is private: no credentials, no module');

      const r = await ws.go(['mod', 'download', '-json', `${mod}@v1.0.0`], { env });
      assert.equal(r.code, 0, `go mod download failed:\n${r.stdout}\n${r.stderr}`);
      const out = JSON.parse(r.stdout) as { Version: string; Zip: string; Error?: string };
      assert.equal(out.Error, undefined);
      assert.equal(out.Version, 'v1.0.0');
      assert.ok(existsSync(out.Zip), 'the module zip is in the module cache');
    } finally {
      rmSync(ws.dir, { recursive: true, force: true });
    }
  });
});
