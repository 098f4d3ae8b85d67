/**
 * The memflow-registry API at /memflow/<repo>/, driven as memflowup and memflow's client drive it (query strings of
 * MEMFLOW-REGISTRY-API.md c.5/c.9), over a real server with real plug-ins compiled by gcc / mingw-w64, and the
 * README's `curl -F file=@… -F signature=$(openssl dgst …)` upload with an openssl-made secp256k1 key.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, startServer, type TestServer } from '../../helpers/server.ts';
import { Lab, N, OPENSSL_MISSING, asn1RS, missingCurl } from './support.ts';
import { ELF_MISSING, PE_MISSING, noPlugin, plugin } from './plugins.ts';

const skip = ELF_MISSING || OPENSSL_MISSING || missingCurl;
const NAIVE_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$/;
const run = promisify(execFile);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function form(file: Buffer, signature?: string, extra?: [string, string]): FormData {
  const f = new FormData();
  f.append('file', new Blob([new Uint8Array(file)]), 'plugin.so');
  if (signature !== undefined) f.append('signature', signature);
  if (extra) f.append(extra[0], extra[1]);
  return f;
}

describe('memflow-registry API', { skip }, () => {
  let srv: TestServer;
  let lab: Lab;
  const post = (body: FormData, repo = 'mf', auth?: string | null) => srv.fetch(`/memflow/${repo}/files`, { method: 'POST', body, auth });
  const getJson = async (path: string) => {
    const r = await srv.fetch(path, { auth: null });
    // The registry's JSON is asserted field by field below; `any` keeps those assertions readable.
    const body: any = r.status === 200 ? await r.json() : await r.text(); // eslint-disable-line @typescript-eslint/no-explicit-any
    return { status: r.status, body, type: r.headers.get('content-type') };
  };

  before(async () => {
    srv = await startServer({ config: { limits: { uploadBytes: 64 * 1024 * 1024 } } });
    lab = new Lab();
    // memflow-registry is readable by anyone; uploads need a token. README-style openssl signatures are high-S about
    // half the time, so this repository normalises S instead of refusing (see the generic tests for `reject`).
    assert.equal((await srv.api('POST', '/repositories', { name: 'mf', format: 'generic', anonymousRead: true, options: { signatures: 'required', lowS: 'normalize' } })).status, 201);
    const pub = readFileSync(lab.key('secp256k1', 'registry').pub, 'utf8');
    assert.equal((await srv.api('PUT', '/repositories/mf/keys/registry', { publicKey: pub })).status, 201);
    assert.equal((await srv.api('POST', '/repositories', { name: 'open', format: 'generic', anonymousRead: true, options: { signatures: 'off' } })).status, 201);
  });
  after(async () => {
    await srv?.close();
    lab?.cleanup();
  });

  it('answers /health with "Ok"', async () => {
    const r = await getJson('/memflow/mf/health');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'Ok');
    assert.match(r.type ?? '', /application\/json/);
    assert.equal((await srv.fetch('/memflow/nope/health')).status, 404);
    assert.equal((await srv.fetch('/memflow/nope/health', { auth: null })).status, 401, 'anonymous callers cannot probe for repositories');
  });

  let coredump: Buffer;
  it('takes the README curl upload: -F file=@… -F signature=$(openssl dgst -sha256 -sign … -hex …)', async () => {
    coredump = plugin({ name: 'coredump', version: '0.2.0', abi: 1, description: 'win32 coredump connector' });
    const file = lab.write('memflow_coredump.x86_64.so', coredump);
    const key = lab.key('secp256k1', 'registry').priv;
    const script =
      `curl -sS -w '\\n%{http_code}' -H "Authorization: Bearer $TOKEN" -F file=@"$FILE" ` +
      `-F signature=$(openssl dgst -sha256 -sign "$KEY" -hex "$FILE" | cut -d' ' -f2) "$URL/memflow/mf/files"`;
    // Asynchronously: the server runs in this process, a synchronous child would block it.
    const curl = async () => (await run('bash', ['-c', script], { env: { ...process.env, TOKEN: ADMIN_TOKEN, FILE: file, KEY: key, URL: srv.url } })).stdout.trim().split('\n');
    const [body, status] = await curl();
    assert.equal(status, '200', body);
    assert.equal(body, '"Added"');
    const [again, status2] = await curl();
    assert.equal(status2, '200');
    assert.equal(again, '"AlreadyExists"');

    const meta = await getJson(`/memflow/mf/files/${sha(coredump)}/metadata`);
    assert.equal(meta.status, 200);
    const m = meta.body as { digest: string; signature: string; created_at: string; descriptors: unknown[] };
    assert.deepEqual(Object.keys(m), ['digest', 'signature', 'created_at', 'descriptors']);
    assert.equal(m.digest, sha(coredump));
    assert.match(m.created_at, NAIVE_UTC);
    assert.deepEqual(m.descriptors, [
      {
        plugin_kind: 'connector',
        export_name: 'MEMFLOW_CONNECTOR_COREDUMP',
        file_type: 'elf',
        architecture: 'x86_64',
        plugin_version: 1,
        name: 'coredump',
        version: '0.2.0',
        description: 'win32 coredump connector',
      },
    ]);
    // Stored low-S (k256 verifiers accept it) and still a valid signature of the file for openssl.
    const der = Buffer.from(m.signature, 'hex');
    assert.ok(asn1RS(lab, der).s <= N.secp256k1 / 2n);
    assert.ok(lab.opensslVerifiesEcdsa(lab.key('secp256k1', 'registry').pub, file, der));
  });

  it('serves the file by digest, 404 "plugin not found" otherwise', async () => {
    const r = await srv.fetch(`/memflow/mf/files/${sha(coredump)}`, { auth: null });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/octet-stream');
    assert.equal(r.headers.get('content-length'), String(coredump.length));
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), coredump);
    for (const d of ['0'.repeat(64), 'not-a-digest', sha(coredump).toUpperCase()]) {
      const miss = await srv.fetch(`/memflow/mf/files/${d}`, { auth: null });
      assert.equal(miss.status, 404);
      assert.equal(await miss.text(), 'plugin not found');
    }
  });

  it('refuses unsigned, badly signed, plug-in-less and non-binary uploads with clear 400s', async () => {
    const file = plugin({ name: 'unsigned', version: '1.0.0', abi: 1 });
    let r = await post(form(file));
    assert.equal(r.status, 400);
    assert.match(await r.text(), /requires a signature/);
    r = await post(form(file, 'zz'));
    assert.equal(r.status, 400);
    assert.match(await r.text(), /^Signature error/);
    const other = lab.key('secp256k1', 'stranger');
    const sig = lab.signDer(other.priv, lab.write('unsigned.so', file)).toString('hex');
    r = await post(form(file, sig));
    assert.equal(r.status, 400);
    assert.match(await r.text(), /does not verify/);

    r = await post(form(noPlugin()), 'open');
    assert.equal(r.status, 400);
    assert.match(await r.text(), /exports no memflow plugin descriptor/);
    r = await post(form(Buffer.from('#!/bin/sh\necho hi\n')), 'open');
    assert.equal(r.status, 400);
    assert.match(await r.text(), /^Memflow error: /);
    // A truncated ELF (section table outside the file): 400, not a crash; a generic PUT of it is stored (generic tests).
    r = await post(form(file.subarray(0, 300)), 'open');
    assert.equal(r.status, 400);
    assert.match(await r.text(), /MALFORMED|outside/i);
    r = await post(form(file, '', ['comment', 'x']), 'open');
    assert.equal(r.status, 400);
    assert.equal(await r.text(), 'unexpected field in multipart form');
    const noFile = new FormData();
    noFile.append('signature', 'ab');
    r = await post(noFile, 'open');
    assert.equal(r.status, 400);
    assert.equal(await r.text(), 'file is required');
  });

  it('needs write permission to upload and delete', async () => {
    const r = await post(form(plugin({ name: 'anon', version: '1.0.0', abi: 1 })), 'open', null);
    assert.equal(r.status, 401);
    assert.equal((await srv.fetch(`/memflow/mf/files/${sha(coredump)}`, { method: 'DELETE', auth: null })).status, 401);
  });

  it('refuses a body over the 20 MiB default with 413', async () => {
    const big = Buffer.alloc(20 * 1024 * 1024 + 1, 0x41);
    const r = await post(form(big), 'open');
    assert.equal(r.status, 413);
    assert.equal((await getJson('/memflow/open/plugins')).body.plugins.length, 0);
  });

  describe('queries, as memflowup sends them', { skip: PE_MISSING }, () => {
    // Uploaded in this order; upload time breaks ties within an ABI.
    const files = [
      { name: 'multi', version: '0.1.0', abi: 1, target: 'elf' },
      { name: 'multi', version: '0.2.0', abi: 2, target: 'elf' },
      { name: 'multi', version: '0.3.0', abi: 1, target: 'elf' },
      { name: 'multi', version: '0.2.1', abi: 2, target: 'pe' },
      { name: 'aardvark', version: '9.9.9', abi: 1, target: 'elf', description: 'first by name' },
    ] as const;
    const digests: string[] = [];
    before(async () => {
      for (const f of files) {
        const b = plugin(f, f.target);
        digests.push(sha(b));
        const r = await post(form(b), 'open');
        assert.equal(await r.text(), '"Added"');
        await new Promise((res) => setTimeout(res, 5));
      }
    });
    const versions = (b: { plugins: { descriptor: { version: string } }[] }) => b.plugins.map((p) => p.descriptor.version);

    it('lists plugins by name with the best variant’s description', async () => {
      const r = await getJson('/memflow/open/plugins');
      assert.deepEqual(r.body, { plugins: [{ name: 'aardvark', description: 'first by name' }, { name: 'multi', description: 'versioned test connector' }] });
    });

    it('orders variants highest ABI first, then newest; default limit 5', async () => {
      const r = await getJson('/memflow/open/plugins/multi');
      assert.equal(r.status, 200);
      assert.deepEqual(versions(r.body), ['0.2.1', '0.2.0', '0.3.0', '0.1.0']);
      assert.equal(r.body.skip, 0);
      const v = r.body.plugins[0];
      assert.deepEqual(Object.keys(v), ['digest', 'signature', 'created_at', 'descriptor']);
      assert.equal(v.digest, digests[3]);
      assert.equal(v.signature, '');
      assert.match(v.created_at, NAIVE_UTC);
      assert.equal(v.descriptor.file_type, 'pe');
    });

    it('finds by URI like memflow’s client (version, memflow_plugin_version, file_type, architecture, limit=1)', async () => {
      let r = await getJson('/memflow/open/plugins/multi?memflow_plugin_version=1&file_type=elf&architecture=x86_64&limit=1');
      assert.deepEqual(versions(r.body), ['0.3.0']);
      r = await getJson('/memflow/open/plugins/multi?version=0.2.0&memflow_plugin_version=2&file_type=elf&architecture=x86_64&limit=1');
      assert.deepEqual(versions(r.body), ['0.2.0']);
      r = await getJson(`/memflow/open/plugins/multi?version=${digests[0].slice(0, 7)}&limit=1`);
      assert.deepEqual(versions(r.body), ['0.1.0']);
      r = await getJson(`/memflow/open/plugins/multi?version=${'a'.repeat(100)}`);
      assert.deepEqual(r.body.plugins, []);
      r = await getJson('/memflow/open/plugins/unknown-name');
      assert.deepEqual(r.body, { plugins: [], skip: 0 });
    });

    it('applies filters before skip, then limit', async () => {
      const r = await getJson('/memflow/open/plugins/multi?file_type=elf&skip=1&limit=1');
      assert.deepEqual(versions(r.body), ['0.3.0']);
      assert.equal(r.body.skip, 1);
      assert.deepEqual(versions((await getJson('/memflow/open/plugins/multi?file_type=elf&skip=3')).body), []);
    });

    it('answers 400 for an unparsable query (bad enum)', async () => {
      assert.equal((await getJson('/memflow/open/plugins/multi?file_type=coff')).status, 400);
      assert.equal((await getJson('/memflow/open/plugins/multi?architecture=mips')).status, 400);
      assert.equal((await getJson('/memflow/open/plugins/multi?memflow_plugin_version=x')).status, 400);
    });

    it('resolves the same files through /api/v1/repositories/<repo>/latest', async () => {
      let r = await srv.api<{ path: string; metadata: Record<string, unknown> }>('GET', '/repositories/open/latest?meta.name=multi&meta.file_type=elf');
      assert.equal(r.status, 200);
      assert.equal(r.body.path, `memflow/${digests[1]}`);
      assert.equal(r.body.metadata.version, '0.2.0');
      r = await srv.api('GET', '/repositories/open/latest?meta.name=multi&meta.abi=1');
      assert.equal(r.body.metadata.version, '0.3.0');
    });

    it('deletes by digest; a missing digest is 404', async () => {
      const d = digests[0];
      let r = await srv.fetch(`/memflow/open/files/${d}`, { method: 'DELETE' });
      assert.equal(r.status, 200);
      assert.equal(await r.text(), '');
      r = await srv.fetch(`/memflow/open/files/${d}`, { method: 'DELETE' });
      assert.equal(r.status, 404);
      assert.equal(await r.text(), 'plugin not found');
      assert.equal((await srv.fetch(`/memflow/open/files/${d}`, { auth: null })).status, 404);
      assert.deepEqual(versions((await getJson('/memflow/open/plugins/multi')).body), ['0.2.1', '0.2.0', '0.3.0']);
    });
  });
});
