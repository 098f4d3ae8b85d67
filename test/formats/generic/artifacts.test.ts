/**
 * Typed artifacts in generic repositories over real HTTP: metadata headers, metadata extracted from real ELF and PE
 * memflow plug-ins, the signature policy (required / optional / off) with openssl-made secp256k1 and P-256 keys and
 * high-S signatures, the trusted-keys API with its re-check report, and "latest compatible" resolution.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../../helpers/server.ts';
import { Lab, N, OPENSSL_MISSING, asn1RS, derOf } from '../memflow/support.ts';
import { ELF_MISSING, PE_MISSING, plugin } from '../memflow/plugins.ts';

type Meta = Record<string, unknown>;

describe('generic typed artifacts', () => {
  let srv: TestServer;
  const put = (path: string, body: Buffer | string, headers: Record<string, string> = {}) => srv.fetch(`/generic/${path}`, { method: 'PUT', body, headers });
  const putJson = async (path: string, body: Buffer | string, headers: Record<string, string> = {}) => {
    const r = await put(path, body, headers);
    return { status: r.status, body: (await r.json()) as { metadata: Meta; digest: string; error?: { code: string; message: string } } };
  };
  const repo = async (name: string, options: Meta = {}) => assert.equal((await srv.api('POST', '/repositories', { name, format: 'generic', options })).status, 201);

  before(async () => {
    srv = await startServer();
    await repo('files');
  });
  after(() => srv?.close());

  describe('metadata headers', () => {
    it('records X-Granary-Meta-* (keys lower-cased, values strings) and echoes them on GET and HEAD', async () => {
      const r = await putJson('files/tool/1.0.0/tool.tgz', 'not a binary', { 'X-Granary-Meta-Channel': 'stable', 'x-granary-meta-ABI': '3', 'X-Granary-Meta-Version': '1.0.0' });
      assert.equal(r.status, 201);
      assert.deepEqual(r.body.metadata, { channel: 'stable', abi: '3', version: '1.0.0' });
      for (const method of ['GET', 'HEAD']) {
        const g = await srv.fetch('/generic/files/tool/1.0.0/tool.tgz', { method });
        assert.equal(g.status, 200);
        assert.equal(g.headers.get('x-granary-meta-channel'), 'stable');
        assert.equal(g.headers.get('x-granary-meta-abi'), '3');
        assert.equal(g.headers.get('x-granary-signature'), null);
      }
      const list = await srv.api<{ assets: { path: string }[] }>('GET', '/repositories/files/assets?meta.channel=stable');
      assert.deepEqual(list.body.assets.map((a) => a.path), ['tool/1.0.0/tool.tgz']);
    });

    it('refuses server-owned and malformed keys', async () => {
      let r = await putJson('files/x', 'x', { 'X-Granary-Meta-Signature': 'abc' });
      assert.equal(r.status, 400);
      assert.match(r.body.error!.message, /set by the server/);
      r = await putJson('files/x', 'x', { 'X-Granary-Meta-_bad': '1' });
      assert.equal(r.status, 400);
      assert.equal((await srv.fetch('/generic/files/x')).status, 404);
    });
  });

  describe('extracted metadata', { skip: ELF_MISSING }, () => {
    it('describes an ELF memflow plug-in', async () => {
      const r = await putJson('files/plugins/foo.so', plugin({ name: 'foo', version: '1.2.3', abi: 1 }), { 'X-Granary-Meta-Os': 'windows', 'X-Granary-Meta-Team': 'mem' });
      assert.equal(r.status, 201);
      const m = r.body.metadata;
      // Extracted keys win over what the uploader said; other keys stay.
      assert.deepEqual(
        { file_type: m.file_type, os: m.os, arch: m.arch, bits: m.bits, endianness: m.endianness, file_kind: m.file_kind, name: m.name, version: m.version, abi: m.abi, team: m.team },
        { file_type: 'elf', os: 'linux', arch: 'x86_64', bits: 64, endianness: 'little', file_kind: 'dyn', name: 'foo', version: '1.2.3', abi: 1, team: 'mem' },
      );
      assert.equal(m.type, 'memflow-plugin');
      assert.deepEqual(m.plugins, [
        { name: 'foo', version: '1.2.3', description: 'versioned test connector', plugin_version: 1, kind: 'connector', export_name: 'MEMFLOW_CONNECTOR_FOO', architecture: 'x86_64' },
      ]);
      const g = await srv.fetch('/generic/files/plugins/foo.so', { method: 'HEAD' });
      assert.equal(g.headers.get('x-granary-meta-file_type'), 'elf');
      assert.equal(g.headers.get('x-granary-meta-bits'), '64');
      assert.equal(g.headers.get('x-granary-meta-plugins'), null, 'arrays are only in the JSON API');
      const bits = await srv.api<{ assets: unknown[] }>('GET', '/repositories/files/assets?meta.bits=64&meta.os=linux');
      assert.equal(bits.body.assets.length, 1);
    });

    it('describes a PE (Windows DLL) memflow plug-in', { skip: PE_MISSING }, async () => {
      const r = await putJson('files/plugins/foo.dll', plugin({ name: 'foo', version: '1.2.4', abi: 2 }, 'pe'));
      assert.equal(r.status, 201);
      const m = r.body.metadata;
      assert.deepEqual({ file_type: m.file_type, os: m.os, arch: m.arch, bits: m.bits, file_kind: m.file_kind, abi: m.abi }, { file_type: 'pe', os: 'windows', arch: 'x86_64', bits: 64, file_kind: 'dll', abi: 2 });
      assert.equal((m.plugins as Meta[])[0].export_name, 'MEMFLOW_CONNECTOR_FOO');
    });

    it('stores a malformed binary without extracted metadata, noting why (a memflow POST of it is a 400)', async () => {
      const broken = plugin({ name: 'foo', version: '1.2.3', abi: 1 }).subarray(0, 300);
      const r = await putJson('files/broken.so', broken, { 'X-Granary-Meta-Name': 'broken' });
      assert.equal(r.status, 201);
      assert.equal(r.body.metadata.name, 'broken');
      assert.equal(r.body.metadata.file_type, undefined);
      assert.match(String(r.body.metadata.inspect_error), /^MALFORMED_BINARY: /);
      assert.equal((await srv.fetch('/generic/files/broken.so')).status, 200);
    });
  });

  describe('signatures', { skip: OPENSSL_MISSING }, () => {
    let lab: Lab;
    let file: string;
    let bytes: Buffer;
    const k1 = () => lab.key('secp256k1', 'k1');
    const p256 = () => lab.key('prime256v1', 'p256');
    /** An openssl DER signature with S forced low or high (n − S is the same signature's twin). */
    const ecdsa = (key: string, curve: 'secp256k1' | 'prime256v1', want: 'low' | 'high') => {
      const { r, s } = asn1RS(lab, lab.signDer(key, file));
      const n = N[curve];
      const low = s > n / 2n ? n - s : s;
      return derOf(r, want === 'low' ? low : n - low);
    };
    /** Flips the last bit of S: replacing a byte with a constant would leave 1 signature in 256 intact. */
    const tamper = (der: Buffer) => { const t = Buffer.from(der); t[t.length - 1] ^= 1; return t; };
    const addKey = (repoName: string, id: string, pem: string) => srv.api('PUT', `/repositories/${repoName}/keys/${id}`, { publicKey: readFileSync(pem, 'utf8') });

    before(async () => {
      lab = new Lab();
      bytes = Buffer.from('signed artifact payload\n');
      file = lab.write('artifact.bin', bytes);
      await repo('strict', { signatures: 'required' });
      await repo('relaxed', {});
      await repo('unchecked', { signatures: 'off' });
      await repo('normalizing', { signatures: 'required', lowS: 'normalize' });
      for (const r of ['strict', 'relaxed', 'normalizing']) {
        assert.equal((await addKey(r, 'k1', k1().pub)).status, 201);
        assert.equal((await addKey(r, 'p256', p256().pub)).status, 201);
      }
    });
    after(() => lab?.cleanup());

    it('required: refuses unsigned and untrusted uploads, accepts lower/upper hex and base64 DER', async () => {
      let r = await putJson('strict/a', bytes);
      assert.equal(r.status, 400);
      assert.match(r.body.error!.message, /requires a signature/);
      const stranger = lab.key('secp256k1', 'stranger');
      r = await putJson('strict/a', bytes, { 'X-Granary-Signature': ecdsa(stranger.priv, 'secp256k1', 'low').toString('hex') });
      assert.equal(r.status, 400);
      assert.match(r.body.error!.message, /does not verify/);

      const low = ecdsa(k1().priv, 'secp256k1', 'low');
      r = await putJson('strict/a', bytes, { 'X-Granary-Signature': low.toString('hex').toUpperCase() });
      assert.equal(r.status, 201);
      assert.equal(r.body.metadata.signature, low.toString('hex'));
      assert.equal(r.body.metadata.signature_key, 'k1');
      assert.equal(r.body.metadata.signature_verified, true);
      assert.equal(r.body.metadata.signature_algorithm, 'ecdsa-secp256k1');
      const g = await srv.fetch('/generic/strict/a');
      assert.equal(g.headers.get('x-granary-signature'), low.toString('hex'));

      r = await putJson('strict/b', bytes, { 'X-Granary-Signature': ecdsa(p256().priv, 'prime256v1', 'low').toString('base64') });
      assert.equal(r.status, 201);
      assert.equal(r.body.metadata.signature_key, 'p256');
    });

    it('secp256k1 high-S: refused by default (as k256 would), stored as its low-S twin with lowS=normalize', async () => {
      const high = ecdsa(k1().priv, 'secp256k1', 'high');
      let r = await putJson('strict/high', bytes, { 'X-Granary-Signature': high.toString('hex') });
      assert.equal(r.status, 400);
      assert.match(r.body.error!.message, /high S/);
      r = await putJson('normalizing/high', bytes, { 'X-Granary-Signature': high.toString('hex') });
      assert.equal(r.status, 201);
      const stored = Buffer.from(String(r.body.metadata.signature), 'hex');
      assert.ok(asn1RS(lab, stored).s <= N.secp256k1 / 2n);
      assert.ok(lab.opensslVerifiesEcdsa(k1().pub, file, stored));
      // P-256 verifiers accept either S; Granary stores the low-S form.
      r = await putJson('strict/p256-high', bytes, { 'X-Granary-Signature': ecdsa(p256().priv, 'prime256v1', 'high').toString('hex') });
      assert.equal(r.status, 201);
      assert.ok(asn1RS(lab, Buffer.from(String(r.body.metadata.signature), 'hex')).s <= N.prime256v1 / 2n);
    });

    it('optional: unsigned is fine, a given signature must verify; off: nothing is checked', async () => {
      let r = await putJson('relaxed/a', bytes);
      assert.equal(r.status, 201);
      assert.equal(r.body.metadata.signature, undefined);
      r = await putJson('relaxed/b', bytes, { 'X-Granary-Signature': tamper(ecdsa(k1().priv, 'secp256k1', 'low')).toString('hex') });
      assert.equal(r.status, 400);
      r = await putJson('unchecked/a', bytes, { 'X-Granary-Signature': 'deadbeef' });
      assert.equal(r.status, 201);
      assert.equal(r.body.metadata.signature, 'deadbeef');
      assert.equal(r.body.metadata.signature_verified, false);
    });

    it('keys API: list, replace, refuse bad keys, delete with a re-check report', async () => {
      const list = await srv.api<{ keys: { id: string; algorithm: string; fingerprint: string }[] }>('GET', '/repositories/relaxed/keys');
      assert.deepEqual(list.body.keys.map((k) => [k.id, k.algorithm]), [['k1', 'ecdsa-secp256k1'], ['p256', 'ecdsa-p256']]);
      assert.match(list.body.keys[0].fingerprint, /^[0-9a-f]{64}$/);
      assert.equal((await srv.api('PUT', '/repositories/relaxed/keys/rsa', { publicKey: 'not a key' })).status, 400);
      assert.equal((await srv.api('PUT', '/repositories/relaxed/keys/k1', { publicKey: readFileSync(k1().pub, 'utf8') })).status, 200, 'replacing answers 200');
      assert.equal((await srv.api('GET', '/repositories/relaxed/keys', undefined, null)).status, 401);

      // One asset signed with k1 (verified by k1), one with p256; a copy of k1 under another id.
      assert.equal((await putJson('relaxed/by-k1', bytes, { 'X-Granary-Signature': ecdsa(k1().priv, 'secp256k1', 'low').toString('hex') })).body.metadata.signature_key, 'k1');
      assert.equal((await putJson('relaxed/by-p256', bytes, { 'X-Granary-Signature': ecdsa(p256().priv, 'prime256v1', 'low').toString('hex') })).body.metadata.signature_key, 'p256');
      assert.equal((await addKey('relaxed', 'k1-copy', k1().pub)).status, 201);

      let del = await srv.api<{ removed: string; assets: Meta[] }>('DELETE', '/repositories/relaxed/keys/k1');
      assert.equal(del.status, 200);
      assert.equal(del.body.removed, 'k1');
      assert.deepEqual(del.body.assets.map((a) => [a.path, a.stillVerified, a.verifiedBy]), [['by-k1', true, 'k1-copy']]);
      del = await srv.api('DELETE', '/repositories/relaxed/keys/p256');
      assert.deepEqual(del.body.assets.map((a) => [a.path, a.stillVerified, a.verifiedBy]), [['by-p256', false, null]]);
      assert.match(String(del.body.assets[0].reason), /does not verify/);
      // Nothing was deleted.
      assert.equal((await srv.fetch('/generic/relaxed/by-p256')).status, 200);
      assert.equal((await srv.api('DELETE', '/repositories/relaxed/keys/p256')).status, 404);
      assert.equal((await srv.api('GET', '/repositories/nope/keys')).status, 404);
    });
  });

  describe('latest compatible', () => {
    const up = async (path: string, meta: Record<string, string>) => {
      const headers = Object.fromEntries(Object.entries(meta).map(([k, v]) => [`X-Granary-Meta-${k}`, v]));
      assert.equal((await put(`rel/${path}`, path, headers)).status, 201);
      await new Promise((res) => setTimeout(res, 3));
    };
    before(async () => {
      await repo('rel');
      await up('a', { name: 'tool', os: 'linux', abi: '1', version: '2.0.0' });
      await up('b', { name: 'tool', os: 'linux', abi: '2', version: '1.9.0' });
      await up('c', { name: 'tool', os: 'linux', abi: '2', version: '1.10.0-rc.1' });
      await up('d', { name: 'tool', os: 'linux', abi: '2', version: '1.10.0' });
      await up('e', { name: 'tool', os: 'linux', abi: '2', version: '1.2.0' });
      await up('f', { name: 'tool', os: 'windows', abi: '3', version: '9.0.0' });
      await up('g', { name: 'tool', os: 'linux', abi: '2', version: '1.10.0' });
    });
    const latest = (q: string) => srv.api<{ repository: string; path: string; metadata: Meta; digest: string; size: number; createdAt: string }>('GET', `/repositories/rel/latest?${q}`);

    it('prefers the highest ABI, then the semver-newest version, then the newest upload', async () => {
      const r = await latest('meta.name=tool&meta.os=linux');
      assert.equal(r.status, 200);
      assert.equal(r.body.path, 'g');
      assert.equal(r.body.repository, 'rel');
      assert.deepEqual(Object.keys(r.body).sort(), ['createdAt', 'digest', 'mediaType', 'metadata', 'path', 'repository', 'size', 'updatedAt']);
      assert.equal((await latest('meta.name=tool')).body.path, 'f');
      assert.equal((await latest('meta.name=tool&meta.abi=1')).body.path, 'a');
    });

    it('404 when nothing matches; 400 for a query that is not a constraint', async () => {
      assert.equal((await latest('meta.name=tool&meta.os=macos')).status, 404);
      assert.equal((await latest('name=tool')).status, 400);
      assert.equal((await srv.api('GET', '/repositories/rel/latest?meta.name=tool', undefined, null)).status, 401);
    });
  });
});
