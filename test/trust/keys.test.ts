/**
 * Public and private keys as openssl writes them (made during the run): every accepted form of one key yields the
 * same algorithm and fingerprint; RSA, other curves, Ed448, private-for-public and garbage are refused by name.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import {
  MalformedKeyError,
  TrustError,
  UnsupportedKeyError,
  WrongKeyTypeError,
  parsePrivateKey,
  parsePublicKey,
  type TrustAlgorithm,
} from '../../src/trust/index.ts';
import { Lab, OPENSSL_MISSING, openssl } from './openssl.ts';

const lab = OPENSSL_MISSING ? null : new Lab();
after(() => lab?.cleanup());

const CASES: { kind: 'secp256k1' | 'prime256v1' | 'ed25519'; algorithm: TrustAlgorithm }[] = [
  { kind: 'secp256k1', algorithm: 'ecdsa-secp256k1' },
  { kind: 'prime256v1', algorithm: 'ecdsa-p256' },
  { kind: 'ed25519', algorithm: 'ed25519' },
];

describe('public keys', { skip: OPENSSL_MISSING }, () => {
  for (const { kind, algorithm } of CASES) {
    describe(kind, () => {
      const files = () => lab!.key(kind);
      const spkiDer = () => openssl(['pkey', '-pubin', '-in', files().pub, '-outform', 'DER']);
      const fp = () => createHash('sha256').update(spkiDer()).digest('hex');

      it('reads the SPKI PEM openssl writes; fingerprint = sha256 of the SPKI DER; pem round-trips', () => {
        const pem = readFileSync(files().pub, 'utf8');
        const k = parsePublicKey(pem);
        assert.equal(k.algorithm, algorithm);
        assert.equal(k.keyObject.type, 'public');
        assert.equal(k.fingerprint, fp());
        assert.equal(k.pem, pem);
        assert.equal(parsePublicKey(k.pem).fingerprint, k.fingerprint);
      });

      it('reads DER bytes, base64 and hex of the DER, the EC PUBLIC KEY label, and a Buffer holding the PEM', () => {
        const der = spkiDer();
        const want = fp();
        assert.equal(parsePublicKey(der).fingerprint, want);
        assert.equal(parsePublicKey(der.toString('base64')).fingerprint, want);
        assert.equal(parsePublicKey(der.toString('hex').toUpperCase()).fingerprint, want);
        assert.equal(parsePublicKey(readFileSync(files().pub)).fingerprint, want);
        const ecLabel = readFileSync(files().pub, 'utf8').replaceAll('PUBLIC KEY', 'EC PUBLIC KEY');
        assert.equal(parsePublicKey(ecLabel).fingerprint, want);
      });

      it('reads a raw public key in hex and bytes (curve found from the point), same fingerprint', () => {
        const der = spkiDer();
        const raw = kind === 'ed25519' ? der.subarray(-32) : der.subarray(-65);
        assert.equal(parsePublicKey(raw.toString('hex')).fingerprint, fp());
        assert.equal(parsePublicKey(`0x${raw.toString('hex')}\n`).fingerprint, fp());
        assert.equal(parsePublicKey(raw).algorithm, algorithm);
        assert.equal(parsePublicKey(raw, { algorithm }).fingerprint, fp());
      });

      it('refuses a key of another algorithm than required', () => {
        const other: TrustAlgorithm = algorithm === 'ed25519' ? 'ecdsa-p256' : 'ed25519';
        assert.throws(() => parsePublicKey(readFileSync(files().pub, 'utf8'), { algorithm: other }), (e) => e instanceof UnsupportedKeyError && e.message.includes(algorithm));
      });

      it('refuses the private key where a public key is expected, and the reverse', () => {
        assert.throws(() => parsePublicKey(readFileSync(files().priv, 'utf8')), WrongKeyTypeError);
        assert.throws(() => parsePublicKey(openssl(['pkey', '-in', files().priv, '-outform', 'DER'])), WrongKeyTypeError);
        assert.throws(() => parsePrivateKey(readFileSync(files().pub, 'utf8')), WrongKeyTypeError);
        assert.throws(() => parsePrivateKey(spkiDer()), WrongKeyTypeError);
      });
    });
  }

  for (const kind of ['secp256k1', 'prime256v1'] as const) {
    it(`${kind}: a compressed point (SPKI DER, and raw 33-byte hex with its algorithm) has the uncompressed key's fingerprint`, () => {
      const { pub } = lab!.key(kind);
      const want = parsePublicKey(readFileSync(pub, 'utf8')).fingerprint;
      const compressed = openssl(['ec', '-pubin', '-in', pub, '-conv_form', 'compressed', '-outform', 'DER']);
      assert.ok(compressed.length < 65, 'openssl wrote a compressed SPKI');
      assert.equal(parsePublicKey(compressed).fingerprint, want);
      const raw = compressed.subarray(-33);
      assert.ok(raw[0] === 2 || raw[0] === 3);
      const algorithm = kind === 'secp256k1' ? 'ecdsa-secp256k1' : 'ecdsa-p256';
      const k = parsePublicKey(raw.toString('hex'), { algorithm });
      assert.equal(k.algorithm, algorithm);
      assert.equal(k.fingerprint, want);
      // A compressed x is on each curve with probability 1/2, so without the algorithm it is refused, always.
      assert.throws(() => parsePublicKey(raw), (e) => e instanceof MalformedKeyError && /compressed raw EC point/.test(e.message));
    });
  }

  it('refuses RSA (SPKI and PKCS#1), secp384r1 and Ed448 keys, naming what was given', () => {
    const rsa = lab!.key('rsa');
    const expectUnsupported = (input: string | Buffer, re: RegExp) =>
      assert.throws(() => parsePublicKey(input), (e) => e instanceof UnsupportedKeyError && e.code === 'UNSUPPORTED_KEY' && re.test(e.message) && /secp256k1/.test(e.message));
    expectUnsupported(readFileSync(rsa.pub, 'utf8'), /RSA key \(2048-bit\)/);
    expectUnsupported(openssl(['rsa', '-in', rsa.priv, '-RSAPublicKey_out']).toString(), /RSA/);
    expectUnsupported(readFileSync(lab!.key('secp384r1').pub, 'utf8'), /curve secp384r1/);
    expectUnsupported(readFileSync(lab!.key('ed448').pub, 'utf8'), /ed448/);
    assert.throws(() => parsePrivateKey(readFileSync(rsa.priv, 'utf8')), (e) => e instanceof UnsupportedKeyError && /RSA/.test(e.message));
  });

  it('refuses garbage with MalformedKeyError, never another error type', () => {
    const inputs: (string | Buffer)[] = [
      '',
      'hello',
      '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n',
      '-----BEGIN PUBLIC KEY-----\nMFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAE',
      '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
      `04${'11'.repeat(64)}`, // not on either curve
      `02${'ff'.repeat(32)}`, // x ≥ p on both curves
      Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]),
      Buffer.from([1, 2, 3, 0xff]),
      'x'.repeat(70_000),
    ];
    for (const input of inputs) {
      assert.throws(() => parsePublicKey(input), (e) => e instanceof MalformedKeyError && e.message.length > 0, String(input).slice(0, 40));
      assert.throws(() => parsePrivateKey(input), (e) => e instanceof TrustError, String(input).slice(0, 40));
    }
  });
});

describe('private keys', { skip: OPENSSL_MISSING }, () => {
  it('reads SEC1 (ecparam -genkey -noout), SEC1 with its EC PARAMETERS block, PKCS#8 (memflow) and DER', () => {
    const { priv, pub } = lab!.key('secp256k1');
    const want = parsePublicKey(readFileSync(pub, 'utf8')).fingerprint;
    const withParams = lab!.path('k1-params.pem');
    openssl(['ecparam', '-name', 'secp256k1', '-genkey', '-out', withParams]);
    assert.match(readFileSync(withParams, 'utf8'), /BEGIN EC PARAMETERS[\s\S]*BEGIN EC PRIVATE KEY/);
    assert.equal(parsePrivateKey(readFileSync(withParams, 'utf8')).algorithm, 'ecdsa-secp256k1');
    const sec1 = readFileSync(priv, 'utf8');
    assert.match(sec1, /BEGIN EC PRIVATE KEY/);
    const pkcs8 = openssl(['pkcs8', '-topk8', '-nocrypt', '-in', priv]).toString();
    assert.match(pkcs8, /BEGIN PRIVATE KEY/);
    for (const input of [sec1, pkcs8, openssl(['pkey', '-in', priv, '-outform', 'DER']), openssl(['ec', '-in', priv, '-outform', 'DER'])]) {
      const k = parsePrivateKey(input);
      assert.equal(k.algorithm, 'ecdsa-secp256k1');
      assert.equal(k.keyObject.type, 'private');
      assert.equal(k.publicKey.fingerprint, want);
    }
  });

  it('reads encrypted PKCS#8 with its passphrase; a missing or wrong passphrase is a clear MalformedKeyError', () => {
    const { priv } = lab!.key('prime256v1');
    const enc = openssl(['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-passout', 'pass:secret', '-in', priv]).toString();
    assert.equal(parsePrivateKey(enc, { passphrase: 'secret' }).algorithm, 'ecdsa-p256');
    assert.throws(() => parsePrivateKey(enc), (e) => e instanceof MalformedKeyError && /encrypted/.test(e.message));
    assert.throws(() => parsePrivateKey(enc, { passphrase: 'nope' }), (e) => e instanceof MalformedKeyError && /passphrase/.test(e.message));
  });

  it('reads Ed25519 PKCS#8 from genpkey', () => {
    const { priv, pub } = lab!.key('ed25519');
    const k = parsePrivateKey(readFileSync(priv));
    assert.equal(k.algorithm, 'ed25519');
    assert.equal(k.publicKey.fingerprint, parsePublicKey(readFileSync(pub)).fingerprint);
  });
});
