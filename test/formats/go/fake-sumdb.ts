/**
 * A tiny checksum database for tests, standing in for sum.golang.org on loopback: a fixed log of go.sum records,
 * a signed tree head (golang.org/x/mod/sumdb/note, Ed25519 with our own key, so `go` can be told to trust it
 * through GOSUMDB=<name>+<hash>+<key>), `/lookup/<module>@<version>` answers and the level-0 hash tile — enough
 * for the real `go` command to verify module checksums, which it does only when every byte is right. Logs of at
 * most 256 records (one tile). Also `h1` (x/mod/sumdb/dirhash.Hash1) to write correct and incorrect records.
 */
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const sha256 = (b: Buffer | string): Buffer => createHash('sha256').update(b).digest();

/** dirhash.Hash1 over named files: sha256 of "<hex sha256>  <name>\n" lines sorted by name. */
export function h1(files: [name: string, content: Buffer | string][]): string {
  const lines = [...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([n, c]) => `${sha256(c).toString('hex')}  ${n}\n`);
  return 'h1:' + sha256(lines.join('')).toString('base64');
}

/** The go.sum line pair of one module version, as the sumdb stores it (a record). */
export function record(module: string, version: string, zipH1: string, modH1: string): string {
  return `${module} ${version} ${zipH1}\n${module} ${version}/go.mod ${modH1}\n`;
}

const leaf = (data: string) => sha256(Buffer.concat([Buffer.from([0]), Buffer.from(data)]));
const node = (l: Buffer, r: Buffer) => sha256(Buffer.concat([Buffer.from([1]), l, r]));

/** RFC 6962 Merkle tree hash, which is what tlog.TreeHash computes. */
function treeHash(leaves: Buffer[]): Buffer {
  if (leaves.length === 1) return leaves[0];
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return node(treeHash(leaves.slice(0, k)), treeHash(leaves.slice(k)));
}

export interface FakeSumdb {
  url: string;
  /** The GOSUMDB value that makes `go` trust this database. */
  gosumdb: string;
  /** Request paths received, in order. */
  seen: string[];
  /** While true every request is answered 503, as a sumdb that is down behind its load balancer. */
  down: boolean;
  close(): Promise<void>;
}

export async function startFakeSumdb(name: string, records: { module: string; version: string; text: string }[]): Promise<FakeSumdb> {
  if (!records.length || records.length > 256) throw new Error('1-256 records');
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const key = Buffer.concat([Buffer.from([1]), pub]); // algorithm 1 = Ed25519
  const hash = sha256(Buffer.concat([Buffer.from(name + '\n'), key])).subarray(0, 4);
  const leaves = records.map((r) => leaf(r.text));
  const text = `go.sum database tree\n${records.length}\n${treeHash(leaves).toString('base64')}\n`;
  const sig = sign(null, Buffer.from(text), privateKey);
  const signedTree = `${text}\n— ${name} ${Buffer.concat([hash, sig]).toString('base64')}\n`;
  const tilePath = `/tile/8/0/000${records.length === 256 ? '' : `.p/${records.length}`}`;
  const tile = Buffer.concat(leaves);
  const seen: string[] = [];
  const server = createServer((req, res) => {
    const path = req.url ?? '';
    seen.push(path);
    if (fake.down) return res.writeHead(503, { 'content-type': 'text/plain' }).end('down for maintenance\n');
    if (path === '/latest') return res.end(signedTree);
    if (path === tilePath) return res.end(tile);
    if (path.startsWith('/lookup/')) {
      const id = records.findIndex((r) => `/lookup/${r.module}@${r.version}` === path);
      if (id >= 0) return res.writeHead(200, { 'content-type': 'text/plain; charset=UTF-8' }).end(`${id}\n${records[id].text}\n${signedTree}`);
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const fake: FakeSumdb = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    gosumdb: `${name}+${hash.toString('hex')}+${key.toString('base64')}`,
    seen,
    down: false,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
  return fake;
}
