/**
 * `granary inspect | sign | verify | push | pull`: typed binary artifacts from the command line. inspect, sign and
 * verify work offline on local files (introspection and trust libraries); push and pull stream to and from a
 * generic repository of a running server. Exit codes are in exit.ts and in every command's help.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { inspect } from '../introspect/index.ts';
import { parsePrivateKey, parsePublicKey, signFile, verifyFile, verifyPrehashed, type PrivateKeyInfo, type PublicKeyInfo } from '../trust/index.ts';
import { formatInspect } from './inspect-format.ts';
import { EXIT_HELP, failed, runAction, serverError, usage, usageExitCode } from './exit.ts';
import {
  downloadToTemp,
  encodePath,
  failFor,
  fileSize,
  getJson,
  hashFile,
  progressBar,
  request,
  resolveRemote,
  uploadBody,
  type Remote,
  type RemoteFlags,
} from './transfer.ts';

interface AssetJson {
  repository: string;
  path: string;
  digest: string;
  size: number;
  mediaType?: string | null;
  metadata?: Record<string, unknown>;
  signature?: string | null;
}

const out = (s: string) => process.stdout.write(s);
const json = (v: unknown) => out(JSON.stringify(v) + '\n');

/** Repeatable `k=v` options. */
function collectMeta(value: string, prev: string[] = []): string[] {
  return [...prev, value];
}

function parseMeta(pairs: string[] | undefined): [string, string][] {
  return (pairs ?? []).map((p) => {
    const i = p.indexOf('=');
    const k = i > 0 ? p.slice(0, i) : '';
    if (!/^[A-Za-z0-9_.-]+$/.test(k)) throw usage(`--meta ${JSON.stringify(p)}: expected key=value, the key made of letters, digits, '_', '.' or '-'`);
    const v = p.slice(i + 1);
    if (!/^[\x20-\x7e]*$/.test(v)) throw usage(`--meta ${k}: the value must be printable ASCII (it travels in an HTTP header)`);
    return [k, v];
  });
}

async function readKeyFile(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (e) {
    throw usage(`cannot read key ${file}: ${(e as Error).message}`);
  }
}

async function privateKey(file: string, passphraseEnv: string | undefined): Promise<PrivateKeyInfo> {
  const passphrase = passphraseEnv === undefined ? undefined : process.env[passphraseEnv];
  if (passphraseEnv !== undefined && passphrase === undefined) throw usage(`--passphrase-env ${passphraseEnv}: the variable is not set`);
  return parsePrivateKey(await readKeyFile(file), { passphrase });
}

async function publicKey(file: string): Promise<PublicKeyInfo> {
  return parsePublicKey(await readKeyFile(file));
}

/** Signs and hashes a file in one read: the signer consumes the stream, each chunk is hashed on its way through. */
async function signAndHash(file: string, key: PrivateKeyInfo): Promise<{ sha256: string; signature: string }> {
  const h = createHash('sha256');
  async function* tapped(): AsyncGenerator<Buffer> {
    for await (const chunk of createReadStream(file)) {
      h.update(chunk as Buffer);
      yield chunk as Buffer;
    }
  }
  const signature = await signFile(key, tapped());
  return { sha256: h.digest('hex'), signature };
}

function registerInspect(program: Command): void {
  usageExitCode(program.command('inspect <file>'))
    .description('describe a binary offline: format, CPU, bitness, byte order, memflow plug-ins, eBPF programs and maps')
    .option('--json', 'print the full result as JSON')
    .addHelpText('after', EXIT_HELP)
    .action(
      runAction(async (file: string, f: { json?: boolean }) => {
        await fileSize(file);
        const buf = await readFile(file);
        let r;
        try {
          r = inspect(buf);
        } catch (e) {
          throw failed(`${file}: ${(e as Error).message}`);
        }
        if (f.json) json(r);
        else out(formatInspect(file, r));
      }),
    );
}

function registerSign(program: Command): void {
  usageExitCode(program.command('sign <file>'))
    .description('sign a file offline (ECDSA secp256k1 / P-256 over SHA-256 of the file, low S; Ed25519) and print the signature')
    .requiredOption('-k, --key <key.pem>', 'private key (PKCS#8 or SEC1 PEM/DER)')
    .option('--passphrase-env <var>', 'environment variable holding the passphrase of an encrypted key')
    .option('-o, --out <file.sig>', 'write the signature to this file instead of printing it')
    .option('--encoding <enc>', 'hex, base64, or der (raw bytes; with --out only)', 'hex')
    .option('--json', 'print {file, sha256, algorithm, signature, keyFingerprint} as JSON')
    .addHelpText('after', EXIT_HELP)
    .action(
      runAction(async (file: string, f: { key: string; passphraseEnv?: string; out?: string; encoding: string; json?: boolean }) => {
        if (!['hex', 'base64', 'der'].includes(f.encoding)) throw usage(`--encoding must be hex, base64 or der, not ${JSON.stringify(f.encoding)}`);
        if (f.encoding === 'der' && !f.out) throw usage('--encoding der writes raw bytes: give --out');
        await fileSize(file);
        const key = await privateKey(f.key, f.passphraseEnv);
        const { sha256, signature } = await signAndHash(file, key);
        const bytes = Buffer.from(signature, 'hex');
        const text = f.encoding === 'base64' ? bytes.toString('base64') : signature;
        if (f.out) await writeFile(f.out, f.encoding === 'der' ? bytes : text + '\n');
        if (f.json) json({ file, sha256, algorithm: key.algorithm, signature, keyFingerprint: key.publicKey.fingerprint, ...(f.out ? { out: f.out } : {}) });
        else if (f.out) process.stderr.write(`signed ${file} (${key.algorithm}, key ${key.publicKey.fingerprint.slice(0, 16)}…) → ${f.out}\n`);
        else out(text + '\n');
      }),
    );
}

function registerVerify(program: Command): void {
  usageExitCode(program.command('verify <file>'))
    .description('verify a signature over a file offline; exit 0 when valid, 1 when not (with the reason)')
    .option('-s, --signature <sig>', 'signature as hex (either case) or base64, DER or raw r‖s / Ed25519')
    .option('-f, --signature-file <file>', 'file holding the signature (text or raw DER bytes)')
    .requiredOption('-k, --key <pub.pem>', 'public key (PEM, DER, or hex/base64 point)')
    .option('--allow-high-s', 'accept secp256k1 signatures with S > n/2 (Rust verifiers refuse them)')
    .option('--json', 'print {valid, algorithm, reason…} as JSON')
    .addHelpText('after', EXIT_HELP)
    .action(
      runAction(async (file: string, f: { signature?: string; signatureFile?: string; key: string; allowHighS?: boolean; json?: boolean }) => {
        if ((f.signature === undefined) === (f.signatureFile === undefined)) throw usage('give exactly one of --signature and --signature-file');
        let sig: string | Buffer;
        if (f.signature !== undefined) sig = f.signature;
        else {
          try {
            sig = await readFile(f.signatureFile!);
          } catch (e) {
            throw usage(`cannot read signature ${f.signatureFile}: ${(e as Error).message}`);
          }
        }
        await fileSize(file);
        const key = await publicKey(f.key);
        const r = await verifyFile(key, createReadStream(file), sig, { lowS: f.allowHighS ? 'normalize' : 'reject' });
        if (f.json) json({ file, keyFingerprint: key.fingerprint, ...r });
        if (!r.valid) {
          if (f.json) process.exitCode = 1;
          else throw failed(`invalid signature for ${file}: ${r.reason}`);
          return;
        }
        if (!f.json) out(`valid ${r.algorithm} signature for ${file} by key ${key.fingerprint}${r.highS ? ' (high S)' : ''}\n`);
      }),
    );
}

type PushFlags = RemoteFlags & { path?: string; meta?: string[]; sign?: string; passphraseEnv?: string; contentType: string; json?: boolean; progress?: boolean };

function registerPush(program: Command): void {
  usageExitCode(program.command('push <repo> <file>'))
    .description('upload a file to a generic repository (PUT /generic/<repo>/<path>), streamed, checksummed, optionally signed')
    .option('-p, --path <path>', 'path in the repository (default: the file name)')
    .option('-m, --meta <key=value>', 'metadata, repeatable (sent as X-Granary-Meta-<key>)', collectMeta)
    .option('--sign <key.pem>', 'sign the file locally with this private key and send the signature')
    .option('--passphrase-env <var>', 'environment variable holding the passphrase of an encrypted --sign key')
    .option('--content-type <type>', 'media type to store', 'application/octet-stream')
    .option('--progress', 'show a progress bar even when stderr is not a terminal')
    .option('--json', 'print the stored asset as JSON')
    .option('--url <url>', 'server URL (env GRANARY_URL)')
    .option('--token <token>', 'API token (env GRANARY_TOKEN)')
    .addHelpText('after', EXIT_HELP)
    .action(runAction((repo: string, file: string, f: PushFlags) => push(repo, file, f)));
}

async function push(repo: string, file: string, f: PushFlags): Promise<void> {
  const remote = resolveRemote(f);
  const meta = parseMeta(f.meta);
  const path = (f.path ?? basename(file)).replace(/^\/+/, '');
  if (!path) throw usage('--path is empty');
  const size = await fileSize(file);
  let sha256: string;
  let signature: string | undefined;
  if (f.sign) ({ sha256, signature } = await signAndHash(file, await privateKey(f.sign, f.passphraseEnv)));
  else sha256 = await hashFile(file);
  const headers: Record<string, string> = {
    'content-type': f.contentType,
    'content-length': String(size),
    'x-checksum-sha256': sha256,
  };
  for (const [k, v] of meta) headers[`x-granary-meta-${k}`] = v;
  if (signature) headers['x-granary-signature'] = signature;
  const bar = progressBar({ total: size, label: `push ${path}`, force: f.progress, json: f.json });
  let res: Response;
  try {
    res = await request(remote, `/generic/${encodeURIComponent(repo)}/${encodePath(path)}`, {
      method: 'PUT',
      headers,
      body: uploadBody(file, bar),
      duplex: 'half',
    });
  } finally {
    bar.stop();
  }
  if (!res.ok) return failFor(res, `push ${repo}/${path}`, remote);
  const stored = (await res.json().catch(() => ({}))) as Partial<AssetJson>;
  const digest = stored.digest ?? `sha256:${sha256}`;
  if (digest !== `sha256:${sha256}`) throw serverError(`the server stored ${digest}, but the file is sha256:${sha256}`);
  if (f.json) json({ repository: repo, path, size, ...stored, digest, ...(signature ? { signature } : {}) });
  else out(`${digest}\n`);
  if (!f.json) process.stderr.write(`pushed ${file} → ${repo}/${path} (${size} bytes${signature ? ', signed' : ''})\n`);
}

type PullFlags = RemoteFlags & { output?: string; os?: string; arch?: string; abi?: string; meta?: string[]; verify?: string; json?: boolean; progress?: boolean };

function registerPull(program: Command): void {
  usageExitCode(program.command('pull <repo> [ref]'))
    .description(
      'download from a generic repository by path or digest (sha256:<hex>), or the latest asset matching --os/--arch/--abi/--meta ' +
        '(then [ref] is the artifact name); the output appears only whole and checksum-verified',
    )
    .option('-o, --output <file>', 'output file (default: the last path segment)')
    .option('--os <os>', 'constraint: metadata os')
    .option('--arch <arch>', 'constraint: metadata arch')
    .option('--abi <abi>', 'constraint: metadata abi')
    .option('-m, --meta <key=value>', 'constraint on any metadata key, repeatable', collectMeta)
    .option('--verify <pub.pem>', "require the asset's signature (X-Granary-Signature) to verify with this public key")
    .option('--progress', 'show a progress bar even when stderr is not a terminal')
    .option('--json', 'print what was pulled as JSON')
    .option('--url <url>', 'server URL (env GRANARY_URL)')
    .option('--token <token>', 'API token (env GRANARY_TOKEN)')
    .addHelpText('after', EXIT_HELP)
    .action(runAction((repo: string, ref: string | undefined, f: PullFlags) => pull(repo, ref, f)));
}

const DIGEST = /^(?:sha256:)?([0-9a-fA-F]{64})$/;

/** Finds which asset to download: by constraints (latest compatible), by digest, or the path as given. */
async function resolveAsset(remote: Remote, repo: string, ref: string | undefined, f: PullFlags): Promise<{ path: string; asset?: AssetJson }> {
  const constraints: [string, string][] = [
    ...(f.os ? [['os', f.os] as [string, string]] : []),
    ...(f.arch ? [['arch', f.arch] as [string, string]] : []),
    ...(f.abi ? [['abi', f.abi] as [string, string]] : []),
    ...parseMeta(f.meta),
  ];
  const r = encodeURIComponent(repo);
  if (constraints.length) {
    const q = new URLSearchParams();
    if (ref) q.set('meta.name', ref);
    for (const [k, v] of constraints) q.set(`meta.${k}`, v);
    const body = await getJson<AssetJson | { asset: AssetJson }>(remote, `/api/v1/repositories/${r}/latest?${q}`, `no asset in ${repo} matches ${q.toString().replace(/&/g, ' ')}`);
    const asset = 'asset' in body ? body.asset : body;
    if (!asset?.path) throw serverError('the latest-asset answer has no path');
    return { path: asset.path, asset };
  }
  if (!ref) throw usage('give a path or digest, or constraints (--os, --arch, --abi, --meta)');
  const d = DIGEST.exec(ref);
  if (d) {
    const digest = `sha256:${d[1].toLowerCase()}`;
    const page = await getJson<{ assets: AssetJson[] }>(remote, `/api/v1/repositories/${r}/assets?digest=${encodeURIComponent(digest)}&limit=1`, `look up ${digest} in ${repo}`);
    const asset = page.assets?.[0];
    if (!asset) throw failed(`${digest} not found in ${repo}`);
    return { path: asset.path, asset };
  }
  return { path: ref.replace(/^\/+/, '') };
}

async function pull(repo: string, ref: string | undefined, f: PullFlags): Promise<void> {
  const remote = resolveRemote(f);
  const key = f.verify ? await publicKey(f.verify) : undefined;
  const { path, asset } = await resolveAsset(remote, repo, ref, f);
  const output = f.output ?? basename(path);
  const res = await request(remote, `/generic/${encodeURIComponent(repo)}/${encodePath(path)}`);
  if (!res.ok) return failFor(res, `pull ${repo}/${path}`, remote);
  const len = res.headers.get('content-length');
  const bar = progressBar({ total: len === null ? null : Number(len), label: `pull ${path}`, force: f.progress, json: f.json });
  let got;
  try {
    got = await downloadToTemp(res, output, bar);
  } finally {
    bar.stop();
  }
  try {
    const etag = res.headers.get('etag')?.replace(/^W\//, '').replace(/"/g, '');
    const expected = [res.headers.get('x-checksum-sha256'), etag?.startsWith('sha256:') ? etag : null, asset?.digest]
      .filter((x): x is string => !!x)
      .map((x) => x.replace(/^sha256:/, '').toLowerCase());
    const wrong = expected.find((x) => x !== got.sha256);
    if (wrong) throw failed(`checksum mismatch for ${repo}/${path}: expected sha256:${wrong}, received sha256:${got.sha256}; nothing written`);
    let signature: string | undefined;
    if (key) {
      signature = res.headers.get('x-granary-signature') ?? asset?.signature ?? undefined;
      if (!signature) throw failed(`${repo}/${path} carries no signature (X-Granary-Signature); refusing it (--verify)`);
      const v = verifyPrehashed(key, Buffer.from(got.sha256, 'hex'), signature);
      if (!v.valid) throw failed(`signature of ${repo}/${path} does not verify with ${f.verify}: ${v.reason}; nothing written`);
    }
    await got.commit();
    if (f.json) json({ repository: repo, path, digest: `sha256:${got.sha256}`, size: got.size, output, ...(key ? { verified: true, keyFingerprint: key.fingerprint } : {}) });
    else out(`${output}\n`);
    if (!f.json) process.stderr.write(`pulled ${repo}/${path} (${got.size} bytes, sha256:${got.sha256}${key ? ', signature verified' : ''}) → ${output}\n`);
  } catch (e) {
    await got.discard();
    throw e;
  }
}

/** Registers the artifact commands on the root program. */
export function registerArtifacts(program: Command): void {
  registerInspect(program);
  registerSign(program);
  registerVerify(program);
  registerPush(program);
  registerPull(program);
}
