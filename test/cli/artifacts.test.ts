/**
 * The artifact commands as a script runs them: bin/granary spawned with a clean environment — inspect, sign and
 * verify offline (keys and cross-checks with the real `openssl`), push and pull against a real server, and the exit
 * codes scripts rely on (0 ok, 1 verification failed / not found, 2 usage, 3 server or network).
 * Pull by constraints and signature headers need server features; each such test probes for its feature first
 * and is skipped with a visible reason when the server lacks it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, writeFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { runGranary, type CliRun } from '../helpers/cli.ts';
import { ADMIN_TOKEN, startServer, type TestServer } from '../helpers/server.ts';
import { decodeDerSignature, parsePrivateKey, SECP256K1, signFile } from '../../src/trust/index.ts';


type Run = CliRun;

let cwd: string;

function granary(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return runGranary(args, { cwd, env });
}

async function expectExit(code: number, args: string[], env?: Record<string, string>): Promise<Run> {
  const r = await granary(args, env);
  assert.equal(r.code, code, `granary ${args.join(' ')} exited ${r.code}, expected ${code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

const p = (name: string) => join(cwd, name);
const exists = (f: string) => access(f).then(() => true, () => false);

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

before(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'granary-artifacts-'));
  for (const [name, curve] of [['k1', 'secp256k1'], ['p256', 'prime256v1']] as const) {
    openssl(['ecparam', '-name', curve, '-genkey', '-noout', '-out', `${name}.pem`]);
    openssl(['ec', '-in', `${name}.pem`, '-pubout', '-out', `${name}.pub`]);
  }
});
after(async () => {
  await rm(cwd, { recursive: true, force: true });
});

describe('granary inspect', () => {
  it('describes a real ELF executable', async () => {
    const text = await expectExit(0, ['inspect', '/bin/true']);
    assert.match(text.stdout, /format:\s+elf/);
    assert.match(text.stdout, /bits:\s+(32|64)/);
    assert.match(text.stdout, /endianness:\s+little/);
    const r = JSON.parse((await expectExit(0, ['inspect', '--json', '/bin/true'])).stdout) as { format: string; bits: number; endianness: string; fileKind: string };
    assert.equal(r.format, 'elf');
    assert.equal(r.bits, process.arch === 'x64' || process.arch === 'arm64' ? 64 : 32);
    assert.equal(r.endianness, 'little');
    assert.ok(['dyn', 'exec'].includes(r.fileKind));
  });

  it('exits 1 with a clear message for a malformed or unknown file, 2 for a missing one', async () => {
    await writeFile(p('truncated'), (await readFile('/bin/true')).subarray(0, 200));
    const r = await expectExit(1, ['inspect', p('truncated')]);
    assert.match(r.stderr, /^granary: .*truncated: .+/);
    assert.equal(r.stdout, '');
    await writeFile(p('text.txt'), 'hello\n');
    assert.match((await expectExit(1, ['inspect', p('text.txt')])).stderr, /not an ELF, PE, Mach-O or tar file/);
    await expectExit(2, ['inspect', p('no-such-file')]);
  });
});

describe('granary sign / verify', () => {
  before(async () => {
    await writeFile(p('payload.bin'), randomBytes(300_000));
  });

  for (const [name, algorithm] of [['k1', 'ecdsa-secp256k1'], ['p256', 'ecdsa-p256']] as const) {
    it(`${algorithm}: sign, verify (hex and base64), and openssl accepts the signature`, async () => {
      const hex = (await expectExit(0, ['sign', p('payload.bin'), '--key', p(`${name}.pem`)])).stdout.trim();
      assert.match(hex, /^30[0-9a-f]+$/);
      if (name === 'k1') assert.ok(decodeDerSignature(Buffer.from(hex, 'hex')).s <= SECP256K1.halfN, 'secp256k1 signatures are low-S');
      const ok = await expectExit(0, ['verify', p('payload.bin'), '--signature', hex, '--key', p(`${name}.pub`)]);
      assert.match(ok.stdout, new RegExp(`valid ${algorithm} signature`));
      await expectExit(0, ['verify', p('payload.bin'), '--signature', hex.toUpperCase(), '--key', p(`${name}.pub`)]);
      await expectExit(0, ['verify', p('payload.bin'), '--signature', Buffer.from(hex, 'hex').toString('base64'), '--key', p(`${name}.pub`)]);

      await writeFile(p(`${name}.der`), Buffer.from(hex, 'hex'));
      assert.match(openssl(['dgst', '-sha256', '-verify', `${name}.pub`, '-signature', `${name}.der`, 'payload.bin']), /Verified OK/);

      // --out with each encoding, then --signature-file
      await expectExit(0, ['sign', p('payload.bin'), '-k', p(`${name}.pem`), '--out', p(`${name}.sig`), '--encoding', 'der']);
      assert.match(openssl(['dgst', '-sha256', '-verify', `${name}.pub`, '-signature', `${name}.sig`, 'payload.bin']), /Verified OK/);
      await expectExit(0, ['verify', p('payload.bin'), '--signature-file', p(`${name}.sig`), '--key', p(`${name}.pub`)]);
      await expectExit(0, ['sign', p('payload.bin'), '-k', p(`${name}.pem`), '--out', p(`${name}.sig.txt`)]);
      await expectExit(0, ['verify', p('payload.bin'), '--signature-file', p(`${name}.sig.txt`), '--key', p(`${name}.pub`)]);
    });
  }

  it('accepts what openssl signed, and says why a signature is refused', async () => {
    openssl(['dgst', '-sha256', '-sign', 'p256.pem', '-out', 'openssl.sig', 'payload.bin']);
    await expectExit(0, ['verify', p('payload.bin'), '--signature-file', p('openssl.sig'), '--key', p('p256.pub')]);
    const hexSig = openssl(['dgst', '-sha256', '-hex', '-sign', 'p256.pem', 'payload.bin']).trim().split('= ').pop()!;
    await expectExit(0, ['verify', p('payload.bin'), '--signature', hexSig, '--key', p('p256.pub')]);
  });

  it('exits 1 for a tampered file or the wrong key, with the reason; 2 for bad input', async () => {
    const hex = (await expectExit(0, ['sign', p('payload.bin'), '--key', p('k1.pem')])).stdout.trim();
    const bytes = await readFile(p('payload.bin'));
    bytes[1000] ^= 1;
    await writeFile(p('tampered.bin'), bytes);
    const bad = await expectExit(1, ['verify', p('tampered.bin'), '--signature', hex, '--key', p('k1.pub')]);
    assert.match(bad.stderr, /invalid signature for .*tampered\.bin: .*not made by this/);
    const json = await expectExit(1, ['verify', p('tampered.bin'), '--signature', hex, '--key', p('k1.pub'), '--json']);
    assert.equal((JSON.parse(json.stdout) as { valid: boolean; code: string }).code, 'mismatch');
    await expectExit(1, ['verify', p('payload.bin'), '--signature', hex, '--key', p('p256.pub')]);
    await expectExit(2, ['verify', p('payload.bin'), '--signature', 'zz-not-a-signature', '--key', p('k1.pub')]);
    await expectExit(2, ['verify', p('payload.bin'), '--key', p('k1.pub')]);
    await expectExit(2, ['verify', p('payload.bin'), '--signature', hex, '--key', p('k1.pem')]);
    await expectExit(2, ['sign', p('payload.bin')]);
    await expectExit(2, ['sign', p('payload.bin'), '--key', p('k1.pub')]);
  });
});

describe('granary push / pull', () => {
  let srv: TestServer;
  const env = () => ({ GRANARY_URL: srv.url, GRANARY_TOKEN: ADMIN_TOKEN });
  const features = { metadata: false, signatureHeader: false, latest: false };

  before(async () => {
    srv = await startServer();
    for (const name of ['bins', 'probe']) assert.equal((await srv.api('POST', '/repositories', { name, format: 'generic' })).status, 201);
    await writeFile(p('plugin.so'), randomBytes(5 * 1024 * 1024 + 17));

    // Probe the server side of metadata headers, signature headers and "latest compatible" once, in their own repository.
    const body = Buffer.from('probe');
    const sig = await signFile(parsePrivateKey(await readFile(p('k1.pem'))), body);
    const put = await srv.fetch('/generic/probe/probe.bin', {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'x-granary-meta-os': 'probeos', 'x-granary-signature': sig },
      body,
    });
    assert.ok(put.ok, `probe upload: HTTP ${put.status}`);
    const list = await srv.api<{ assets: { path: string; metadata: Record<string, unknown> }[] }>('GET', '/repositories/probe/assets');
    features.metadata = list.body.assets?.find((a) => a.path === 'probe.bin')?.metadata?.os === 'probeos';
    const got = await srv.fetch('/generic/probe/probe.bin');
    await got.arrayBuffer();
    features.signatureHeader = !!got.headers.get('x-granary-signature');
    const latest = await srv.api<{ path?: string; asset?: { path?: string } }>('GET', '/repositories/probe/latest?meta.os=probeos');
    features.latest = latest.status === 200 && (latest.body.path ?? latest.body.asset?.path) === 'probe.bin';
  });
  after(async () => {
    await srv?.close();
  });

  const needs = (t: TestContext, feature: keyof typeof features, what: string): boolean => {
    if (features[feature]) return true;
    t.skip(`server side not there yet: ${what}`);
    return false;
  };

  it('pushes with metadata and pulls by path, byte for byte; prints the digest', async () => {
    const pushed = await expectExit(0, ['push', 'bins', p('plugin.so'), '--path', 'memflow/plugin.so', '--meta', 'os=linux', '--meta', 'arch=x86_64', '--meta', 'abi=1'], env());
    const digest = pushed.stdout.trim();
    assert.match(digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(pushed.stderr.includes('%'), false, 'no progress bar when stderr is not a terminal');
    await expectExit(0, ['pull', 'bins', 'memflow/plugin.so', '-o', p('pulled.so')], env());
    assert.deepEqual(await readFile(p('pulled.so')), await readFile(p('plugin.so')));
    // default output: the last path segment, in the working directory
    await expectExit(0, ['pull', 'bins', 'memflow/plugin.so'], env());
    assert.deepEqual(await readFile(p('plugin.so')), await readFile(p('pulled.so')));
    // by digest, with --url/--token flags instead of the environment
    const j = await expectExit(0, ['pull', 'bins', digest, '-o', p('by-digest.so'), '--json', '--url', srv.url, '--token', ADMIN_TOKEN]);
    const info = JSON.parse(j.stdout) as { digest: string; path: string; size: number };
    assert.deepEqual([info.digest, info.path, info.size], [digest, 'memflow/plugin.so', 5 * 1024 * 1024 + 17]);
    assert.deepEqual(await readFile(p('by-digest.so')), await readFile(p('plugin.so')));
  });

  it('stores the --meta pairs with the asset', async (t) => {
    if (!needs(t, 'metadata', 'X-Granary-Meta-* headers are not stored as metadata')) return;
    await expectExit(0, ['push', 'bins', p('payload.bin'), '--path', 'meta/payload.bin', '--meta', 'os=linux', '--meta', 'kernel_version=5.15'], env());
    const list = await srv.api<{ assets: { path: string; metadata: Record<string, unknown> }[] }>('GET', '/repositories/bins/assets');
    const a = list.body.assets.find((x) => x.path === 'meta/payload.bin');
    assert.equal(a?.metadata.os, 'linux');
    assert.equal(a?.metadata.kernel_version, '5.15');
  });

  it('--json and --progress: JSON carries the digest, a forced bar goes to stderr', async () => {
    const r = await expectExit(0, ['push', 'bins', p('plugin.so'), '--path', 'progress/plugin.so', '--progress'], env());
    assert.match(r.stderr, /push progress\/plugin\.so .*%/);
    const j = await expectExit(0, ['push', 'bins', p('plugin.so'), '--path', 'json/plugin.so', '--json', '--progress'], env());
    const out = JSON.parse(j.stdout) as { digest: string; path: string; repository: string };
    assert.equal(out.path, 'json/plugin.so');
    assert.match(out.digest, /^sha256:/);
    assert.equal(j.stderr, '', 'no progress bar in --json mode');
    const pulled = await expectExit(0, ['pull', 'bins', 'json/plugin.so', '-o', p('progress.so'), '--progress'], env());
    assert.match(pulled.stderr, /pull json\/plugin\.so .*%/);
  });

  it('exit codes: missing path 1 (no output file), no URL 2, unreachable 3, bad token 2', async () => {
    const r = await expectExit(1, ['pull', 'bins', 'no/such/file.bin', '-o', p('missing.bin')], env());
    assert.match(r.stderr, /^granary: pull bins\/no\/such\/file\.bin: HTTP 404/);
    assert.equal(await exists(p('missing.bin')), false);
    await expectExit(1, ['pull', 'bins', `sha256:${'0'.repeat(64)}`, '-o', p('missing.bin')], env());
    await expectExit(2, ['push', 'bins', p('payload.bin')]);
    await expectExit(2, ['push', 'bins', p('no-such-file')], env());
    await expectExit(2, ['pull', 'bins'], env());
    const down = await expectExit(3, ['push', 'bins', p('payload.bin'), '--url', 'http://127.0.0.1:1'], { GRANARY_TOKEN: ADMIN_TOKEN });
    assert.match(down.stderr, /cannot reach http:\/\/127\.0\.0\.1:1/);
    await expectExit(3, ['pull', 'bins', 'x', '--url', 'http://127.0.0.1:1']);
    await expectExit(2, ['push', 'bins', p('payload.bin')], { GRANARY_URL: srv.url, GRANARY_TOKEN: 'wrong-token' });
    await expectExit(2, ['push', 'bins', p('payload.bin'), '--meta', 'no-equals-sign'], env());
  });

  it('pull refuses a download whose checksum does not match, writing nothing', async () => {
    // A server that lies about the digest: a tiny HTTP stub in front of nothing.
    const { createServer } = await import('node:http');
    const stub = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-checksum-sha256': 'ab'.repeat(32) });
      res.end('not what the checksum says');
    });
    await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
    const port = (stub.address() as { port: number }).port;
    try {
      const r = await expectExit(1, ['pull', 'bins', 'lie.bin', '-o', p('lie.bin'), '--url', `http://127.0.0.1:${port}`]);
      assert.match(r.stderr, /checksum mismatch/);
      assert.equal(await exists(p('lie.bin')), false);
    } finally {
      stub.close();
    }
  });

  it('pulls the latest asset matching --os/--arch/--abi', async (t) => {
    if (!needs(t, 'latest', 'GET /api/v1/repositories/<repo>/latest')) return;
    await srv.api('POST', '/repositories', { name: 'plugins', format: 'generic' });
    const variants = [
      ['linux', 'x86_64', '1', 'a'],
      ['linux', 'x86_64', '2', 'b'],
      ['linux', 'arm64', '2', 'c'],
      ['windows', 'x86_64', '2', 'd'],
    ];
    for (const [os, arch, abi, tag] of variants) {
      await writeFile(p(`v-${tag}`), `build ${tag}`);
      await expectExit(0, ['push', 'plugins', p(`v-${tag}`), '--path', `conn/${tag}.bin`, '--meta', `os=${os}`, '--meta', `arch=${arch}`, '--meta', `abi=${abi}`], env());
    }
    await expectExit(0, ['pull', 'plugins', '--os', 'linux', '--arch', 'x86_64', '--abi', '2', '-o', p('latest.bin')], env());
    assert.equal(await readFile(p('latest.bin'), 'utf8'), 'build b');
    await expectExit(0, ['pull', 'plugins', '--os', 'linux', '--arch', 'x86_64', '--abi', '1', '-o', p('abi1.bin')], env());
    assert.equal(await readFile(p('abi1.bin'), 'utf8'), 'build a');
    // [ref] with constraints is the artifact name (metadata `name`)
    await writeFile(p('v-e'), 'build e');
    await expectExit(0, ['push', 'plugins', p('v-e'), '--path', 'other/e.bin', '--meta', 'name=other', '--meta', 'os=linux', '--meta', 'arch=x86_64', '--meta', 'abi=9'], env());
    await expectExit(0, ['pull', 'plugins', 'other', '--os', 'linux', '-o', p('named.bin')], env());
    assert.equal(await readFile(p('named.bin'), 'utf8'), 'build e');
    await expectExit(1, ['pull', 'plugins', 'nameless', '--os', 'linux', '-o', p('none.bin')], env());
    await expectExit(1, ['pull', 'plugins', '--os', 'macos', '-o', p('none.bin')], env());
    assert.equal(await exists(p('none.bin')), false);
  });

  it('push --sign sends the signature; pull --verify accepts it and refuses a wrong key or an unsigned asset', async (t) => {
    if (!needs(t, 'signatureHeader', 'X-Granary-Signature is not returned on download')) return;
    await expectExit(0, ['push', 'bins', p('payload.bin'), '--path', 'signed/payload.bin', '--sign', p('k1.pem')], env());
    const ok = await expectExit(0, ['pull', 'bins', 'signed/payload.bin', '-o', p('signed.bin'), '--verify', p('k1.pub')], env());
    assert.match(ok.stderr, /signature verified/);
    assert.deepEqual(await readFile(p('signed.bin')), await readFile(p('payload.bin')));

    const wrong = await expectExit(1, ['pull', 'bins', 'signed/payload.bin', '-o', p('wrong.bin'), '--verify', p('p256.pub')], env());
    assert.match(wrong.stderr, /does not verify/);
    assert.equal(await exists(p('wrong.bin')), false);

    await copyFile(p('payload.bin'), p('unsigned.bin'));
    await expectExit(0, ['push', 'bins', p('unsigned.bin'), '--path', 'unsigned/payload.bin'], env());
    const unsigned = await expectExit(1, ['pull', 'bins', 'unsigned/payload.bin', '-o', p('unsigned-out.bin'), '--verify', p('k1.pub')], env());
    assert.match(unsigned.stderr, /no signature/);
    assert.equal(await exists(p('unsigned-out.bin')), false);
  });

  it("a repository requiring signatures: push --sign with a trusted key passes, unsigned or untrusted exits 1", async (t) => {
    if (!needs(t, 'signatureHeader', 'X-Granary-Signature is not handled by the server')) return;
    const created = await srv.api('POST', '/repositories', { name: 'strict', format: 'generic', options: { signatures: 'required' } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const key = await srv.api('PUT', '/repositories/strict/keys/release', { publicKey: await readFile(p('k1.pub'), 'utf8') });
    assert.ok(key.status === 201 || key.status === 200, JSON.stringify(key.body));
    await expectExit(0, ['push', 'strict', p('payload.bin'), '--sign', p('k1.pem')], env());
    const unsigned = await expectExit(1, ['push', 'strict', p('payload.bin'), '--path', 'unsigned.bin'], env());
    assert.match(unsigned.stderr, /Signature error/);
    await expectExit(1, ['push', 'strict', p('payload.bin'), '--path', 'untrusted.bin', '--sign', p('p256.pem')], env());
    await expectExit(0, ['pull', 'strict', 'payload.bin', '-o', p('strict.bin'), '--verify', p('k1.pub')], env());
  });
});
