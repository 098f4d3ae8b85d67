/**
 * Strict DER for ECDSA signatures (`ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }`, SEC 1 §C.5), written
 * here rather than borrowed so the rules are explicit: definite minimal lengths, minimal positive integers, nothing
 * before, inside or after the sequence that does not belong. OpenSSL and k256 apply the same rules when verifying
 * (OpenSSL re-encodes and compares), so a signature this accepts is one they accept. Sized for curves up to 256 bits.
 */
import { bytesToBigInt } from './curves.ts';
import { MalformedSignatureError } from './errors.ts';

/** Longest INTEGER content accepted: 32 bytes of a 256-bit value plus a leading 0x00. */
const MAX_INT_BYTES = 33;
/** Longest whole signature: 30 len 02 21 <33> 02 21 <33> (implied by the per-INTEGER bound, which is checked). */
export const MAX_DER_SIGNATURE_BYTES = 2 + 2 * (2 + MAX_INT_BYTES);

const hex2 = (b: number) => `0x${b.toString(16).padStart(2, '0')}`;

/** Decodes a strict DER ECDSA signature; throws `MalformedSignatureError` saying what is wrong and where. */
export function decodeDerSignature(der: Uint8Array): { r: bigint; s: bigint } {
  if (der.length < 2) throw new MalformedSignatureError(`DER signature truncated (${der.length} bytes)`);
  if (der[0] !== 0x30) throw new MalformedSignatureError(`not a DER SEQUENCE (first byte ${hex2(der[0])}, expected 0x30)`);
  let pos = 1;
  let len = der[pos++];
  if (len === 0x80) throw new MalformedSignatureError('indefinite length is not DER');
  if (len === 0x81) {
    if (pos >= der.length) throw new MalformedSignatureError('DER signature truncated in its length');
    len = der[pos++];
    if (len < 0x80) throw new MalformedSignatureError('non-minimal DER length (long form for a length below 128)');
  } else if (len > 0x81) {
    throw new MalformedSignatureError(`DER length form ${hex2(len)} is too long for a signature`);
  }
  const end = pos + len;
  if (end > der.length) throw new MalformedSignatureError(`DER signature truncated: the SEQUENCE declares ${len} bytes, ${der.length - pos} follow`);
  if (end < der.length) throw new MalformedSignatureError(`${der.length - end} trailing byte(s) after the DER SEQUENCE`);

  const readInt = (name: 'r' | 's'): bigint => {
    if (pos + 2 > end) throw new MalformedSignatureError(`DER signature truncated before INTEGER ${name}`);
    const tag = der[pos++];
    if (tag !== 0x02) throw new MalformedSignatureError(`expected INTEGER ${name} (tag 0x02), found tag ${hex2(tag)}`);
    const n = der[pos++];
    if (n >= 0x80) throw new MalformedSignatureError(`INTEGER ${name} uses a long-form length; at most ${MAX_INT_BYTES} bytes are possible`);
    if (n === 0) throw new MalformedSignatureError(`INTEGER ${name} is empty`);
    if (pos + n > end) throw new MalformedSignatureError(`INTEGER ${name} runs past the end of the SEQUENCE`);
    const v = der.subarray(pos, pos + n);
    pos += n;
    if (v[0] & 0x80) throw new MalformedSignatureError(`INTEGER ${name} is negative`);
    if (v[0] === 0 && n > 1 && !(v[1] & 0x80)) throw new MalformedSignatureError(`INTEGER ${name} is not minimally encoded (superfluous leading zero)`);
    if (n > MAX_INT_BYTES) throw new MalformedSignatureError(`INTEGER ${name} is ${n} bytes; at most ${MAX_INT_BYTES}`);
    if (n === MAX_INT_BYTES && v[0] !== 0) throw new MalformedSignatureError(`INTEGER ${name} is wider than 256 bits`);
    const value = bytesToBigInt(v);
    if (value === 0n) throw new MalformedSignatureError(`${name} is zero`);
    return value;
  };
  const r = readInt('r');
  const s = readInt('s');
  if (pos !== end) throw new MalformedSignatureError(`${end - pos} extra byte(s) inside the DER SEQUENCE after s`);
  return { r, s };
}

function encodeInt(v: bigint): Buffer {
  if (v <= 0n) throw new RangeError('DER signature integers must be positive');
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (parseInt(hex.slice(0, 2), 16) & 0x80) hex = `00${hex}`;
  const body = Buffer.from(hex, 'hex');
  if (body.length > MAX_INT_BYTES) throw new RangeError('DER signature integer too large');
  return Buffer.concat([Buffer.from([0x02, body.length]), body]);
}

/** Encodes (r, s) as minimal DER. Throws RangeError for r or s ≤ 0 or wider than 256 bits (caller bugs, not input errors). */
export function encodeDerSignature(r: bigint, s: bigint): Buffer {
  const content = Buffer.concat([encodeInt(r), encodeInt(s)]);
  const head = content.length < 0x80 ? Buffer.from([0x30, content.length]) : Buffer.from([0x30, 0x81, content.length]);
  return Buffer.concat([head, content]);
}
