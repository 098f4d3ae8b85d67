/**
 * Signatures made by the real openssl CLI during the run, read in every encoding and verified by file, by stream and
 * by digest (both paths must agree on every input); Granary's own signatures checked by `openssl dgst -verify` /
 * `pkeyutl -verify`; secp256k1 high-S variants (n − s of an openssl signature) refused or normalised by policy;
 * wrong keys, tampered files and malformed signatures give results or TrustErrors, never other exceptions.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  BadDigestError,
  MalformedSignatureError,
  TrustError,
  parsePrivateKey,
  parsePublicKey,
  parseSignature,
  signFile,
  signPrehashed,
  verifyFile,
  verifyPrehashed,
  type PublicKeyInfo,
  type VerifyOptions,
  type VerifyResult,
} from '../../src/trust/index.ts';
import { Lab, N, OPENSSL_MISSING, asn1RS, be32, derOf, openssl } from './openssl.ts';

const lab = OPENSSL_MISSING ? null : new Lab();
after(() => lab?.cleanup());

const DATA = randomBytes(200_000);
const DIGEST = createHash('sha256').update(DATA).digest();
const TAMPERED = Buffer.from(DATA);
TAMPERED[12345] ^= 1;
let filePath = '';
let tamperedPath = '';
before(() => {
  if (!lab) return;
  filePath = lab.write('artifact.bin', DATA);
  tamperedPath = lab.write('tampered.bin', TAMPERED);
});

/** Verifies by digest, by buffer and by stream; asserts the three agree; returns the result. */
async function verifyAll(key: PublicKeyInfo, sig: string | Buffer, opts: VerifyOptions = {}, data: Buffer = DATA, path = filePath): Promise<VerifyResult> {
  const digest = createHash('sha256').update(data).digest();
  const pre = verifyPrehashed(key, digest, sig, opts);
  assert.deepEqual(await verifyFile(key, data, sig, opts), pre, 'buffer and digest verification disagree');
  // A generator opens the file only once read: verifyFile leaves the stream unread when the signature cannot fit the key.
  async function* chunks() {
    yield* createReadStream(path, { highWaterMark: 7919 });
  }
  assert.deepEqual(await verifyFile(key, chunks(), sig, opts), pre, 'stream and digest verification disagree');
  return pre;
}

/** Every text and binary form of one DER ECDSA signature. */
function ecdsaForms(der: Buffer, hexLine: string): [string, string | Buffer][] {
  const derFile = lab!.write(`forms-${process.hrtime.bigint()}.der`, der);
  const wrapped = openssl(['base64', '-in', derFile]).toString();
  const { r, s } = asn1RS(lab!, der);
  const p1363 = Buffer.concat([be32(r), be32(s)]);
  const hex = der.toString('hex');
  return [
    ['openssl dgst -hex line as printed', hexLine],
    ['lowercase hex', hex],
    ['uppercase hex (the Rust client)', hex.toUpperCase()],
    ['0x-prefixed hex with whitespace', `  0x${hex}\n`],
    ['base64 wrapped by openssl base64', wrapped],
    ['base64 on one line (openssl base64 -A)', openssl(['base64', '-A', '-in', derFile]).toString()],
    ['url-safe base64 without padding', der.toString('base64url')],
    ['binary DER', der],
    ['P1363 r‖s as bytes', p1363],
    ['P1363 r‖s as hex', p1363.toString('hex')],
    ['P1363 r‖s as base64', p1363.toString('base64')],
    ['Buffer holding the hex text', Buffer.from(`${hex}\n`)],
  ];
}

for (const curve of ['secp256k1', 'prime256v1'] as const) {
  describe(`ECDSA ${curve}`, { skip: OPENSSL_MISSING }, () => {
    const n = N[curve];
    let priv = '';
    let pub: PublicKeyInfo;
    let other: PublicKeyInfo;
    before(() => {
      if (!lab) return;
      const k = lab.key(curve);
      priv = k.priv;
      pub = parsePublicKey(readFileSync(k.pub, 'utf8'));
      other = parsePublicKey(readFileSync(lab.key(curve, `${curve}-other`).pub, 'utf8'));
    });

    it('verifies `openssl dgst -sha256 -sign -hex` output in every encoding, by file, stream and digest', async () => {
      const line = lab!.signHex(priv, filePath);
      assert.match(line, /^EC-SHA2-256\(.*\)= [0-9a-f]+\n$/);
      const der = Buffer.from(line.split('= ')[1].trim(), 'hex');
      const { r, s } = asn1RS(lab!, der);
      const lowDer = derOf(r, s > n / 2n ? n - s : s).toString('hex');
      for (const [what, form] of ecdsaForms(der, line)) {
        const res = await verifyAll(pub, form, { lowS: 'normalize' });
        assert.ok(res.valid, `${what}: ${JSON.stringify(res)}`);
        assert.equal(res.canonicalHex, lowDer, what);
        assert.equal(res.form, what.startsWith('P1363') ? 'p1363' : 'der', what);
        assert.equal(res.algorithm, curve === 'secp256k1' ? 'ecdsa-secp256k1' : 'ecdsa-p256');
      }
    });

    it('reads the `(stdin)= ` prefix and binary signatures from `openssl dgst -sign` on stdin', async () => {
      const line = openssl(['dgst', '-sha256', '-sign', priv, '-hex'], DATA).toString();
      assert.match(line, /\(stdin\)= /);
      assert.ok((await verifyAll(pub, line, { lowS: 'normalize' })).valid);
      assert.ok((await verifyAll(pub, openssl(['dgst', '-sha256', '-sign', priv], DATA), { lowS: 'normalize' })).valid);
    });

    it('accepts what openssl signs over the precomputed digest (pkeyutl -sign), by file and by digest', async () => {
      const digestFile = lab!.write(`${curve}.sha256`, openssl(['dgst', '-sha256', '-binary', filePath]));
      assert.deepEqual(readFileSync(digestFile), DIGEST);
      const sig = openssl(['pkeyutl', '-sign', '-inkey', priv, '-in', digestFile]);
      assert.ok((await verifyAll(pub, sig, { lowS: 'normalize' })).valid);
    });

    it('signFile makes low-S DER hex that `openssl dgst -verify` accepts (SEC1 and PKCS#8 keys, buffer and stream)', async () => {
      const sec1 = parsePrivateKey(readFileSync(priv));
      const pkcs8 = parsePrivateKey(openssl(['pkcs8', '-topk8', '-nocrypt', '-in', priv]));
      for (let i = 0; i < 6; i++) {
        const key = i % 2 ? pkcs8 : sec1;
        const hex = await signFile(key, i % 3 ? DATA : createReadStream(filePath));
        assert.match(hex, /^30[0-9a-f]+$/);
        const der = Buffer.from(hex, 'hex');
        assert.ok(asn1RS(lab!, der).s <= n / 2n, 'S is low');
        assert.ok(lab!.opensslVerifiesEcdsa(lab!.key(curve).pub, filePath, der), 'openssl verifies it');
        assert.ok(!lab!.opensslVerifiesEcdsa(lab!.key(curve).pub, tamperedPath, der), 'openssl refuses it for another file');
        const res = await verifyAll(pub, hex);
        assert.ok(res.valid && !res.highS && res.canonicalHex === hex);
      }
    });

    it(curve === 'secp256k1' ? 'high S (n − s of an openssl signature): refused by default, normalised on request' : 'high S is accepted (P-256 verifiers accept both) and stored low', async () => {
      const der = lab!.signDer(priv, filePath);
      const { r, s } = asn1RS(lab!, der);
      const low = s > n / 2n ? n - s : s;
      const highDer = derOf(r, n - low);
      const lowDer = derOf(r, low);
      // Both are genuine signatures: OpenSSL does not care about S.
      assert.ok(lab!.opensslVerifiesEcdsa(lab!.key(curve).pub, filePath, highDer));
      assert.ok(lab!.opensslVerifiesEcdsa(lab!.key(curve).pub, filePath, lowDer));
      for (const form of [highDer, highDer.toString('hex').toUpperCase(), highDer.toString('base64'), Buffer.concat([be32(r), be32(n - low)])]) {
        const normalized = await verifyAll(pub, form, { lowS: 'normalize' });
        assert.ok(normalized.valid && normalized.highS);
        assert.equal(normalized.canonicalHex, lowDer.toString('hex'));
        const byDefault = await verifyAll(pub, form);
        const rejected = await verifyAll(pub, form, { lowS: 'reject' });
        assert.deepEqual(byDefault, rejected);
        if (curve === 'secp256k1') {
          assert.ok(!rejected.valid && rejected.code === 'high-s');
          assert.match(rejected.reason, /high.*S > n\/2.*k256/);
        } else {
          assert.ok(rejected.valid && rejected.highS && rejected.canonicalHex === lowDer.toString('hex'));
        }
      }
      const lowRes = await verifyAll(pub, lowDer);
      assert.ok(lowRes.valid && !lowRes.highS);
    });

    it('a wrong key or a tampered file is a mismatch, from every entry point', async () => {
      const der = lab!.signDer(priv, filePath);
      for (const opts of [{ lowS: 'normalize' }, { lowS: 'reject' }] as const) {
        const wrongKey = await verifyAll(other, der, opts);
        assert.ok(!wrongKey.valid && wrongKey.code === 'mismatch', JSON.stringify(wrongKey));
        assert.match(wrongKey.reason, /not made by this ecdsa-\S+ key over this file/);
        const tampered = await verifyAll(pub, der, opts, TAMPERED, tamperedPath);
        assert.ok(!tampered.valid && tampered.code === 'mismatch');
      }
      const ed = parsePublicKey(readFileSync(lab!.key('ed25519').pub));
      const wrongAlg = await verifyAll(ed, der);
      assert.ok(!wrongAlg.valid && wrongAlg.code === 'wrong-form');
      assert.match(wrongAlg.reason, /DER ECDSA signature cannot be an Ed25519 signature/);
    });
  });
}

describe('Ed25519 (signs the 32-byte SHA-256 digest of the file)', { skip: OPENSSL_MISSING }, () => {
  let files: { priv: string; pub: string };
  let pub: PublicKeyInfo;
  let digestFile = '';
  before(() => {
    if (!lab) return;
    files = lab.key('ed25519');
    pub = parsePublicKey(readFileSync(files.pub, 'utf8'));
    digestFile = lab.write('ed.sha256', openssl(['dgst', '-sha256', '-binary', filePath]));
  });

  it('verifies `openssl pkeyutl -sign -rawin` over the digest in every encoding, by file, stream and digest', async () => {
    const sig = openssl(['pkeyutl', '-sign', '-inkey', files.priv, '-rawin', '-in', digestFile]);
    assert.equal(sig.length, 64);
    for (const form of [sig, sig.toString('hex'), sig.toString('hex').toUpperCase(), sig.toString('base64'), sig.toString('base64url'), `0x${sig.toString('hex')}\n`]) {
      const res = await verifyAll(pub, form);
      assert.ok(res.valid && res.form === 'ed25519' && res.canonicalHex === sig.toString('hex'));
    }
    const tampered = await verifyAll(pub, sig, {}, TAMPERED, tamperedPath);
    assert.ok(!tampered.valid && tampered.code === 'mismatch');
  });

  it('a pure Ed25519 signature over the file bytes themselves is not a Granary signature', async () => {
    const overFile = openssl(['pkeyutl', '-sign', '-inkey', files.priv, '-rawin', '-in', filePath]);
    const res = await verifyAll(pub, overFile);
    assert.ok(!res.valid && res.code === 'mismatch');
  });

  it('signFile / signPrehashed make what `openssl pkeyutl -verify -rawin` accepts over the digest', async () => {
    const key = parsePrivateKey(readFileSync(files.priv));
    const hex = await signFile(key, createReadStream(filePath));
    assert.equal(hex, signPrehashed(key, DIGEST), 'Ed25519 is deterministic: both entry points sign the same message');
    assert.equal(hex, openssl(['pkeyutl', '-sign', '-inkey', files.priv, '-rawin', '-in', digestFile]).toString('hex'), 'byte-identical to openssl');
    assert.ok(lab!.opensslVerifiesEd25519(files.pub, digestFile, Buffer.from(hex, 'hex')));
    assert.ok((await verifyAll(pub, hex)).valid);
    const k1 = parsePrivateKey(readFileSync(lab!.key('secp256k1').priv));
    assert.throws(() => signPrehashed(k1, DIGEST), (e) => e instanceof TrustError && /Ed25519 keys only/.test(e.message));
  });
});

describe('malformed signatures and arguments', { skip: OPENSSL_MISSING }, () => {
  let pub: PublicKeyInfo;
  let der: Buffer;
  before(() => {
    if (!lab) return;
    pub = parsePublicKey(readFileSync(lab.key('secp256k1').pub));
    der = lab.signDer(lab.key('secp256k1').priv, filePath);
  });

  it('refuses truncated, extended, non-minimal and garbage signatures with MalformedSignatureError, from every entry point', async () => {
    const r1 = der[3];
    const nonMinimal = Buffer.concat([Buffer.from([0x30, der[1] + 1, 0x02, r1 + 1, 0x00]), der.subarray(4)]);
    const inputs: [string, string | Buffer, RegExp][] = [
      ['truncated DER', der.subarray(0, der.length - 1), /truncated/],
      ['truncated DER hex', der.subarray(0, 20).toString('hex'), /truncated/],
      ['trailing byte', Buffer.concat([der, Buffer.from([0])]), /trailing/],
      ['trailing bytes (hex)', `${der.toString('hex')}0000`, /trailing/],
      ['non-minimal r (one more leading zero)', nonMinimal, /r is not minimally encoded/],
      ['odd-length hex', der.toString('hex').slice(1), /odd number of digits/],
      ['empty', '', /empty/],
      ['whitespace', ' \n\t', /empty/],
      ['prefix only', 'SHA2-256(stdin)= ', /empty/],
      ['not hex or base64', 'this is not a signature!', /neither hex nor base64 \(unexpected character "!"/],
      ['mixed base64 alphabets', 'ab+c_d', /neither hex nor base64/],
      ['base64 of impossible length', 'abcdg', /impossible length/],
      ['non-canonical base64', 'AB==', /non-canonical/],
      ['63 raw bytes', Buffer.concat([Buffer.from([1]), randomBytes(62)]), /neither a DER ECDSA signature nor a 64-byte raw/],
      ['65 raw bytes', Buffer.concat([Buffer.from([1]), randomBytes(64)]), /neither/],
      ['too long text', 'a'.repeat(5000), /at most 1024/],
      ['too many bytes', Buffer.alloc(300, 0xff), /at most 256/],
    ];
    for (const [what, input, re] of inputs) {
      const check = (e: unknown) => e instanceof MalformedSignatureError && e.code === 'MALFORMED_SIGNATURE' && re.test(e.message);
      assert.throws(() => parseSignature(input), check, what);
      assert.throws(() => verifyPrehashed(pub, DIGEST, input), check, what);
      await assert.rejects(verifyFile(pub, DATA, input), check, what);
    }
  });

  it('refuses a digest that is not 32 bytes', () => {
    assert.throws(() => verifyPrehashed(pub, DIGEST.subarray(0, 31), der), BadDigestError);
    assert.throws(() => verifyPrehashed(pub, Buffer.concat([DIGEST, DIGEST]), der), BadDigestError);
  });

  it('r or s out of range for the curve is a wrong-form result (P1363 of all 0xff bytes / zero s)', async () => {
    const res = await verifyAll(pub, Buffer.alloc(64, 0xff));
    assert.ok(!res.valid && res.code === 'wrong-form');
    const zeroS = await verifyAll(pub, Buffer.concat([be32(5n), be32(0n)]));
    assert.ok(!zeroS.valid && zeroS.code === 'wrong-form');
  });

  it('byte mutations of a real signature never verify and never throw anything but TrustError', async () => {
    const good = verifyPrehashed(pub, DIGEST, der, { lowS: 'normalize' });
    assert.ok(good.valid);
    let malformed = 0;
    let failed = 0;
    for (let i = 0; i < 300; i++) {
      const m = Buffer.from(der);
      const pos = i % m.length;
      const mutated =
        i % 3 === 0 ? (m[pos] ^= 1 << (i % 8), m) : i % 3 === 1 ? m.subarray(0, pos) : Buffer.concat([m.subarray(0, pos), Buffer.from([i & 0xff]), m.subarray(pos)]);
      for (const form of [mutated, mutated.toString('hex')]) {
        try {
          const res = verifyPrehashed(pub, DIGEST, form, { lowS: 'normalize' });
          assert.ok(!res.valid, `mutation ${i} verified`);
          failed++;
        } catch (e) {
          assert.ok(e instanceof TrustError, `mutation ${i} threw ${String(e)}`);
          malformed++;
        }
      }
    }
    assert.ok(malformed > 0 && failed > 0);
  });
});
