/**
 * Repository signature policy over openssl-made keys and signatures: required / optional / off, several trusted
 * keys with ids, the file given by digest (Buffer, hex, `sha256:hex`), bytes or stream, high S refused or
 * normalised (and the stored normalised signature accepted by `openssl dgst -verify`), user-facing reasons.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { checkUpload, parsePublicKey, parsePrivateKey, signFile, type TrustedKey, type UploadFile } from '../../src/trust/index.ts';
import { Lab, N, OPENSSL_MISSING, asn1RS, derOf, openssl } from './openssl.ts';

const lab = OPENSSL_MISSING ? null : new Lab();
after(() => lab?.cleanup());

const DATA = randomBytes(50_000);
const DIGEST = createHash('sha256').update(DATA).digest();

describe('checkUpload', { skip: OPENSSL_MISSING }, () => {
  let file = '';
  let keys: TrustedKey[] = [];
  let lowHex = '';
  let highHex = '';
  let edHex = '';
  let strangerHex = '';
  before(async () => {
    if (!lab) return;
    file = lab.write('plugin.so', DATA);
    const trusted = (id: string, kind: 'secp256k1' | 'prime256v1' | 'ed25519', name = kind): TrustedKey => ({
      id,
      key: parsePublicKey(readFileSync(lab.key(kind, name).pub)),
    });
    keys = [trusted('ci-p256', 'prime256v1'), trusted('release', 'secp256k1'), trusted('laptop', 'ed25519')];
    const { r, s } = asn1RS(lab, lab.signDer(lab.key('secp256k1').priv, file));
    const n = N.secp256k1;
    const low = s > n / 2n ? n - s : s;
    lowHex = derOf(r, low).toString('hex');
    highHex = derOf(r, n - low).toString('hex');
    edHex = await signFile(parsePrivateKey(readFileSync(lab.key('ed25519').priv)), DATA);
    strangerHex = lab.signHex(lab.key('secp256k1', 'stranger').priv, file);
  });

  const byDigest: UploadFile = { digest: DIGEST };

  it('required: a signature from any trusted key is verified, whatever form the file is given in', async () => {
    const files: UploadFile[] = [
      byDigest,
      { digest: DIGEST.toString('hex') },
      { digest: `sha256:${DIGEST.toString('hex')}` },
      { bytes: DATA },
      { stream: createReadStream(file) },
    ];
    for (const f of files) {
      const res = await checkUpload({ mode: 'required' }, keys, f, lowHex.toUpperCase());
      assert.deepEqual(res, { accepted: true, verified: true, code: 'verified', keyId: 'release', algorithm: 'ecdsa-secp256k1', signature: lowHex });
    }
    const ed = await checkUpload({ mode: 'required' }, keys, byDigest, edHex);
    assert.equal(ed.keyId, 'laptop');
    assert.equal(ed.signature, edHex);
    const fromOpenssl = await checkUpload({ mode: 'required', lowS: 'normalize' }, keys, byDigest, lab!.signHex(lab!.key('prime256v1').priv, file));
    assert.ok(fromOpenssl.verified && fromOpenssl.keyId === 'ci-p256');
  });

  it('required: no signature, whitespace only, or no trusted keys are refused with reasons', async () => {
    for (const sig of [undefined, null, '', '  \n', Buffer.alloc(0)]) {
      const res = await checkUpload({ mode: 'required' }, keys, byDigest, sig);
      assert.equal(res.accepted, false);
      assert.equal(res.code, 'unsigned');
      assert.match(res.reason ?? '', /requires a signature/);
    }
    const none = await checkUpload({ mode: 'required' }, [], byDigest, lowHex);
    assert.deepEqual([none.accepted, none.code], [false, 'no-trusted-keys']);
    assert.match(none.reason ?? '', /trusts no key/);
  });

  it('a signature by a key the repository does not trust is refused, naming the trusted key ids', async () => {
    for (const mode of ['required', 'optional'] as const) {
      const res = await checkUpload({ mode }, keys, byDigest, strangerHex);
      assert.deepEqual([res.accepted, res.verified, res.code], [false, false, 'untrusted']);
      assert.match(res.reason ?? '', /DER ECDSA signature does not verify for this file under any of the repository's trusted keys \("ci-p256", "release", "laptop"\)/);
    }
    const otherFile = await checkUpload({ mode: 'required' }, keys, { bytes: Buffer.concat([DATA, Buffer.from([0])]) }, lowHex);
    assert.equal(otherFile.code, 'untrusted');
  });

  it('a malformed signature is refused with its defect, not thrown', async () => {
    for (const [sig, re] of [
      ['not a signature!', /^malformed signature: neither hex nor base64/],
      ['zz-not-a-signature', /^malformed signature: non-canonical base64/],
      [`${lowHex}00`, /trailing byte/],
      [lowHex.slice(0, -2), /truncated/],
      [Buffer.from([0x30, 0x02, 0x02, 0x00]), /empty|truncated/],
    ] as const) {
      const res = await checkUpload({ mode: 'optional' }, keys, byDigest, sig);
      assert.deepEqual([res.accepted, res.code], [false, 'malformed']);
      assert.match(res.reason ?? '', re);
    }
  });

  it('high S: refused by default and with lowS=reject, naming the key; normalised and stored low-S otherwise', async () => {
    for (const policy of [{ mode: 'required' }, { mode: 'required', lowS: 'reject' }] as const) {
      const res = await checkUpload(policy, keys, byDigest, highHex);
      assert.deepEqual([res.accepted, res.verified, res.code, res.keyId], [false, false, 'high-s', 'release']);
      assert.match(res.reason ?? '', /matches trusted key "release" but has a high S value/);
    }
    const res = await checkUpload({ mode: 'required', lowS: 'normalize' }, keys, byDigest, highHex);
    assert.deepEqual([res.accepted, res.verified, res.keyId, res.signature], [true, true, 'release', lowHex]);
    assert.match(res.reason ?? '', /low-S signature \(n − S\) is stored/);
    assert.ok(lab!.opensslVerifiesEcdsa(lab!.key('secp256k1').pub, file, Buffer.from(res.signature!, 'hex')));
  });

  it('optional: unsigned uploads pass unverified; with no trusted key a signature is kept unchecked', async () => {
    assert.deepEqual(await checkUpload({ mode: 'optional' }, keys, byDigest), {
      accepted: true,
      verified: false,
      code: 'unsigned',
      reason: 'no signature was given',
    });
    const unchecked = await checkUpload({ mode: 'optional' }, [], byDigest, ` ${highHex}\n`);
    assert.deepEqual([unchecked.accepted, unchecked.verified, unchecked.code, unchecked.signature], [true, false, 'no-trusted-keys', highHex]);
  });

  it('off: nothing is checked, not even the signature text', async () => {
    const res = await checkUpload({ mode: 'off' }, keys, byDigest, 'garbage!');
    assert.deepEqual(res, { accepted: true, verified: false, code: 'off', reason: 'signature checking is off for this repository', signature: 'garbage!' });
    assert.equal((await checkUpload({ mode: 'off' }, keys, byDigest)).signature, undefined);
  });

  it('removing the signing key and re-checking reports the artifact as no longer trusted', async () => {
    const remaining = keys.filter((k) => k.id !== 'release');
    const res = await checkUpload({ mode: 'required' }, remaining, byDigest, lowHex);
    assert.deepEqual([res.accepted, res.code], [false, 'untrusted']);
    assert.doesNotMatch(res.reason ?? '', /release/);
  });

  it('a bad digest argument is a TrustError (a caller bug, not the uploader’s)', async () => {
    await assert.rejects(checkUpload({ mode: 'required' }, keys, { digest: 'abc' }, lowHex), { code: 'BAD_DIGEST' });
    await assert.rejects(checkUpload({ mode: 'required' }, keys, { digest: DIGEST.subarray(1) }, lowHex), { code: 'BAD_DIGEST' });
  });

  it('openssl agrees: the stored ECDSA signature verifies with the trusted PEM', () => {
    const pem = lab!.key('secp256k1').pub;
    const sigFile = lab!.write('stored.sig', Buffer.from(lowHex, 'hex'));
    assert.match(openssl(['dgst', '-sha256', '-verify', pem, '-signature', sigFile, file]).toString(), /Verified OK/);
  });
});
