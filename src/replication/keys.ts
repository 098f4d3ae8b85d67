/**
 * The feed's signing key (primary) and its public half (replicas). Ed25519 by default; an ECDSA P-256 key
 * configured by the operator works too. The key file is published with link(2), so two processes starting on
 * one data dir at once agree on a single key.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { canonicalJson, type FeedHead } from './feed-format.ts';

export interface FeedSigner {
  fingerprint: string;
  publicPem: string;
  sign(head: FeedHead): string;
}

export interface FeedVerifier {
  fingerprint: string;
  verify(head: FeedHead, signature: string): boolean;
}

export function defaultKeyPath(dataDir: string): string {
  return join(dataDir, 'keys', 'replication.pem');
}

export function fingerprintOf(pub: KeyObject): string {
  return createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex');
}

function checkType(k: KeyObject, what: string): void {
  const t = k.asymmetricKeyType;
  if (t === 'ed25519') return;
  if (t === 'ec' && k.asymmetricKeyDetails?.namedCurve === 'prime256v1') return;
  throw new Error(`${what}: feed keys are Ed25519 or ECDSA P-256, not ${t}${t === 'ec' ? ` (${k.asymmetricKeyDetails?.namedCurve})` : ''}`);
}

/** Ed25519 signs the message itself; ECDSA signs its SHA-256, in fixed-size r||s form. */
const algorithm = (k: KeyObject) => (k.asymmetricKeyType === 'ed25519' ? null : 'sha256');

/** Reads the signing key at `path`, creating an Ed25519 one (and `<name>.pub.pem` beside it) when absent. */
export async function loadOrCreateSigner(path: string): Promise<FeedSigner> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ed25519');
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    try {
      await link(tmp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      await unlink(tmp);
    }
    pem = await readFile(path, 'utf8');
  }
  return signerFromPem(pem, path);
}

export async function signerFromPem(pem: string, where: string): Promise<FeedSigner> {
  const priv = createPrivateKey(pem);
  checkType(priv, where);
  const pub = createPublicKey(priv);
  const publicPem = pub.export({ type: 'spki', format: 'pem' }).toString();
  const pubPath = where.replace(/\.pem$/, '') + '.pub.pem';
  // Written for operators to copy to replicas; the private file stays the source of truth.
  await writeFile(pubPath, publicPem).catch(() => {});
  return {
    fingerprint: fingerprintOf(pub),
    publicPem,
    sign: (head) => sign(algorithm(priv), Buffer.from(canonicalJson(head)), { key: priv, dsaEncoding: 'ieee-p1363' }).toString('base64'),
  };
}

export function verifierFromPem(pem: string, where: string): FeedVerifier {
  let pub: KeyObject;
  try {
    pub = createPublicKey(pem);
  } catch (e) {
    throw new Error(`${where}: not a PEM public key (${(e as Error).message})`);
  }
  checkType(pub, where);
  return {
    fingerprint: fingerprintOf(pub),
    verify(head, signature) {
      try {
        return verify(algorithm(pub), Buffer.from(canonicalJson(head)), { key: pub, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64'));
      } catch {
        return false;
      }
    },
  };
}

/** Promotion: a fresh Ed25519 key replaces the old one (kept as `<path>.<time>.old`), so the old feed is fenced. */
export async function rotateSigningKey(path: string): Promise<FeedSigner> {
  try {
    await rename(path, `${path}.${Date.now()}.old`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return loadOrCreateSigner(path);
}
