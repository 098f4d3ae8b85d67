/**
 * Strict DER of ECDSA signatures and the curve constants, without openssl: encode/decode round trips at the
 * edges, each malformation refused with a message naming it, and the constants checked against OpenSSL via Node's
 * ECDH (1·G = G, (n−1)·G = −G, 2·G on the curve).
 */
import assert from 'node:assert/strict';
import { createECDH, createHash, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { describe, it } from 'node:test';
import { bytesToBigInt } from '../../src/trust/curves.ts';
import { ecdsaVerifyDigest, isOnCurve, publicPoint } from '../../src/trust/ecdsa.ts';
import { MalformedSignatureError, P256, SECP256K1, decodeDerSignature, encodeDerSignature } from '../../src/trust/index.ts';
import { be32, derOf } from './openssl.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('DER signatures', () => {
  it('round-trips values at the byte edges, matching an independent encoder and Node-made signatures', () => {
    const values = [1n, 0x7fn, 0x80n, 0xffn, 0x100n, 2n ** 255n - 1n, 2n ** 255n, 2n ** 256n - 1n, SECP256K1.n - 1n];
    for (const r of values) {
      for (const s of [1n, 0x80n, 2n ** 255n]) {
        const der = encodeDerSignature(r, s);
        assert.deepEqual(der, derOf(r, s));
        assert.deepEqual(decodeDerSignature(der), { r, s });
      }
    }
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    for (let i = 0; i < 20; i++) {
      const der = sign('sha256', randomBytes(16), privateKey);
      const { r, s } = decodeDerSignature(der);
      assert.deepEqual(encodeDerSignature(r, s), der);
    }
  });

  it('refuses each malformation with a MalformedSignatureError naming it', () => {
    const good = derOf(0x1234n, 0x80n); // 30 08 02 02 1234 02 02 0080
    assert.deepEqual(good, hex('30 08 0202 1234 0202 0080'));
    const cases: [string, Buffer, RegExp][] = [
      ['empty', Buffer.alloc(0), /truncated/],
      ['wrong outer tag', hex('31 08 0202 1234 0202 0080'), /not a DER SEQUENCE/],
      ['truncated', good.subarray(0, good.length - 1), /truncated/],
      ['trailing byte', Buffer.concat([good, hex('00')]), /1 trailing byte/],
      ['indefinite length', hex('30 80 0202 1234 0202 0080 0000'), /indefinite/],
      ['long-form length for a short sequence', hex('30 81 08 0202 1234 0202 0080'), /non-minimal DER length|too long/],
      ['non-minimal r (leading zero)', hex('30 09 0203 001234 0202 0080'), /r is not minimally encoded/],
      ['non-minimal s (leading zero)', hex('30 09 0202 1234 0203 000080'), /s is not minimally encoded/],
      ['negative r', hex('30 08 0202 9234 0202 0080'), /r is negative/],
      ['negative s', hex('30 07 0202 1234 0201 80'), /s is negative/],
      ['zero r', hex('30 07 0201 00 0202 0080'), /r is zero/],
      ['empty INTEGER', hex('30 06 0200 0202 0080'), /r is empty/],
      ['wrong inner tag', hex('30 08 0302 1234 0202 0080'), /expected INTEGER r/],
      ['integer past the sequence', hex('30 07 0202 1234 0205 00'), /runs past|truncated/],
      ['extra INTEGER inside', hex('30 0b 0202 1234 0202 0080 0201 01'), /extra byte/],
      ['r wider than 256 bits', Buffer.concat([hex('30 27 0221 01'), Buffer.alloc(32, 1), hex('0202 0080')]), /wider than 256 bits/],
      ['r of 34 bytes', Buffer.concat([hex('30 28 0222 01'), Buffer.alloc(33, 1), hex('0202 0080')]), /r is 34 bytes; at most 33/],
      ['long-form INTEGER length', Buffer.concat([hex('30 25 0281 22'), Buffer.alloc(34, 1)]), /long-form length/],
      ['too long with trailing bytes', Buffer.concat([hex('30 47'), Buffer.alloc(200, 2)]), /trailing/],
    ];
    for (const [what, bytes, re] of cases) {
      assert.throws(() => decodeDerSignature(bytes), (e) => e instanceof MalformedSignatureError && e.code === 'MALFORMED_SIGNATURE' && re.test(e.message), what);
    }
  });

  it('encodes only positive integers', () => {
    assert.throws(() => encodeDerSignature(0n, 1n), RangeError);
    assert.throws(() => encodeDerSignature(1n, -1n), RangeError);
  });
});

describe('curve constants', () => {
  for (const c of [SECP256K1, P256]) {
    it(`${c.name}: G, n and the equation agree with OpenSSL`, () => {
      const ecdh = createECDH(c.name);
      const point = (k: bigint) => {
        ecdh.setPrivateKey(be32(k));
        const p = ecdh.getPublicKey();
        return { x: bytesToBigInt(p.subarray(1, 33)), y: bytesToBigInt(p.subarray(33)) };
      };
      assert.deepEqual(point(1n), { x: c.gx, y: c.gy });
      assert.deepEqual(point(c.n - 1n), { x: c.gx, y: c.p - c.gy });
      assert.ok(isOnCurve(c, c.gx, c.gy));
      const two = point(2n);
      assert.ok(isOnCurve(c, two.x, two.y));
      assert.ok(!isOnCurve(c, two.x, two.y + 1n));
      assert.equal(c.halfN, (c.n - 1n) / 2n);
      assert.throws(() => ecdh.setPrivateKey(be32(c.n)), 'a scalar equal to n is no private key');
    });
  }
});

describe('BigInt ECDSA over a digest', () => {
  for (const c of [SECP256K1, P256]) {
    it(`${c.name}: agrees with OpenSSL on random keys and messages, high-S twins, flipped bits and swapped keys`, () => {
      for (let i = 0; i < 12; i++) {
        const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: c.name });
        const other = generateKeyPairSync('ec', { namedCurve: c.name }).publicKey;
        const msg = randomBytes(1 + i * 37);
        const digest = createHash('sha256').update(msg).digest();
        const { r, s } = decodeDerSignature(sign('sha256', msg, privateKey));
        const q = publicPoint(publicKey);
        const q2 = publicPoint(other);
        const flipped = Buffer.from(digest);
        flipped[i % 32] ^= 1 << (i % 8);
        const cases: [Buffer, bigint, bigint, typeof q, boolean][] = [
          [digest, r, s, q, true],
          [digest, r, c.n - s, q, true],
          [flipped, r, s, q, false],
          [digest, r, s, q2, false],
          [digest, r + 1n, s, q, false],
          [digest, s, r, q, false],
        ];
        for (const [d, rr, ss, point, want] of cases) {
          assert.equal(ecdsaVerifyDigest(c, point.x, point.y, d, rr, ss), want);
          // OpenSSL needs the message itself, so it can only judge the cases over the unflipped digest.
          if (d === digest) assert.equal(verify('sha256', msg, point === q ? publicKey : other, encodeDerSignature(rr, ss)), want, 'OpenSSL agrees');
        }
      }
    });
  }
});
