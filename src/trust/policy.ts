/**
 * A repository's signature policy applied to one upload: may it proceed, did a trusted key sign it, and what
 * signature should be stored with it. Pure: the caller supplies the policy, the trusted keys and the file (by
 * digest, bytes or stream) and turns a refusal into its protocol's 400 with `reason` as the message.
 *
 * Rules: `off` checks nothing. Otherwise a given signature must verify under one of the trusted keys (tried in the
 * given order; the file is hashed once), except that a repository with no trusted keys yet accepts it unchecked when
 * signatures are `optional` (as memflow-registry does without `MEMFLOW_PUBLIC_KEY_FILE`). No signature is refused
 * only when `required`. Re-checking stored artifacts after a key is removed is the same call with the remaining keys.
 */
import { MalformedSignatureError, TrustError } from './errors.ts';
import { describeSignature, parseSignature, sha256, verifyPrehashed } from './signature.ts';
import type { ParsedSignature, SignaturePolicy, TrustedKey, UploadCheck, UploadFile, VerifyResult } from './types.ts';

/** Key ids named in a message, at most this many. */
const MAX_IDS_IN_MESSAGE = 10;

function idList(keys: readonly TrustedKey[]): string {
  const ids = keys.slice(0, MAX_IDS_IN_MESSAGE).map((k) => JSON.stringify(k.id));
  return keys.length > MAX_IDS_IN_MESSAGE ? `${ids.join(', ')} and ${keys.length - MAX_IDS_IN_MESSAGE} more` : ids.join(', ');
}

/** The 32-byte digest of an `UploadFile`; a digest given as text may be hex with or without `sha256:`. */
export async function uploadDigest(file: UploadFile): Promise<Buffer> {
  if ('digest' in file) {
    if (typeof file.digest !== 'string') return Buffer.from(file.digest);
    const hex = file.digest.replace(/^sha256:/, '');
    if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new TrustError('BAD_DIGEST', `not a SHA-256 hex digest: ${JSON.stringify(file.digest.slice(0, 80))}`);
    return Buffer.from(hex, 'hex');
  }
  return sha256('bytes' in file ? file.bytes : file.stream);
}

/**
 * Applies `policy` to an upload. Never throws for anything the uploader sent (a malformed signature is a refusal
 * with code `malformed`); throws `BadDigestError` / TrustError `BAD_DIGEST` only for a caller's bad digest argument.
 * `signature` is the text or bytes as received; empty or whitespace-only counts as absent. A `{ stream }` is read
 * only when there is something to verify; otherwise it is left unread for the caller (who owns it) to drain or destroy.
 */
export async function checkUpload(
  policy: SignaturePolicy,
  keys: readonly TrustedKey[],
  file: UploadFile,
  signature?: string | Uint8Array | null,
): Promise<UploadCheck> {
  const given = signature !== undefined && signature !== null && (typeof signature === 'string' ? signature.trim() !== '' : signature.length > 0);
  const asGiven = () => (typeof signature === 'string' ? signature.trim() : Buffer.from(signature as Uint8Array).toString('hex'));

  if (policy.mode === 'off') {
    return { accepted: true, verified: false, code: 'off', reason: 'signature checking is off for this repository', ...(given ? { signature: asGiven() } : {}) };
  }
  if (!given) {
    return policy.mode === 'required'
      ? {
          accepted: false,
          verified: false,
          code: 'unsigned',
          reason: 'this repository requires a signature: sign the file with one of its trusted keys (granary sign) and send the signature with the upload',
        }
      : { accepted: true, verified: false, code: 'unsigned', reason: 'no signature was given' };
  }

  let sig: ParsedSignature;
  try {
    sig = parseSignature(signature as string | Uint8Array);
  } catch (e) {
    if (!(e instanceof MalformedSignatureError)) throw e;
    return { accepted: false, verified: false, code: 'malformed', reason: e.message };
  }
  if (keys.length === 0) {
    return policy.mode === 'required'
      ? {
          accepted: false,
          verified: false,
          code: 'no-trusted-keys',
          reason: 'this repository requires signatures but trusts no key yet; an administrator must add a public key first',
        }
      : { accepted: true, verified: false, code: 'no-trusted-keys', reason: 'the repository trusts no key yet, so the signature was stored unchecked', signature: asGiven() };
  }

  const digest = await uploadDigest(file);
  let highS: TrustedKey | null = null;
  for (const trusted of keys) {
    const r: VerifyResult = verifyPrehashed(trusted.key, digest, sig, { lowS: policy.lowS });
    if (r.valid) {
      return {
        accepted: true,
        verified: true,
        code: 'verified',
        keyId: trusted.id,
        algorithm: r.algorithm,
        signature: r.canonicalHex,
        ...(r.highS ? { reason: 'the signature had a high S value; the equivalent low-S signature (n − S) is stored' } : {}),
      };
    }
    if (r.code === 'high-s') highS ??= trusted;
  }
  if (highS) {
    return {
      accepted: false,
      verified: false,
      code: 'high-s',
      keyId: highS.id,
      algorithm: highS.key.algorithm,
      reason:
        `the signature matches trusted key ${JSON.stringify(highS.id)} but has a high S value (S > n/2), which k256-based ` +
        'verifiers such as memflowup refuse; re-sign with `granary sign` (always low-S) or replace S by n − S',
    };
  }
  return {
    accepted: false,
    verified: false,
    code: 'untrusted',
    reason: `${describeSignature(sig)} does not verify for this file under any of the repository's trusted keys (${idList(keys)})`,
  };
}
