/**
 * Test helper for the HTTPS tests: a throwaway CA and server certificates for 127.0.0.1 made with the `openssl`
 * CLI (so the certificates are what an operator's tooling produces, not what Node would accept anyway), and a
 * look at the certificate a server presents to a new connection.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { Agent } from 'undici';
import { missingClient } from '../clients/oci-layout.ts';

/** For node:test's `skip`: why the TLS tests cannot run here, or false. */
export const missingOpenssl = (): string | false => missingClient('openssl');

export interface CertFiles {
  certFile: string;
  keyFile: string;
}

export interface TestCa {
  /** ca.crt: the PEM file clients are told to trust. */
  caFile: string;
  ca: Buffer;
  /** undici dispatcher trusting only this CA; no keep-alive, so closing a server never waits for an idle test connection. */
  agent: Agent;
  /** A server certificate for 127.0.0.1 and localhost, with this common name and serial, signed by the CA. */
  issue(name: string, serial: number): CertFiles;
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed:\n${r.stderr}`);
}

const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** Makes the CA in `dir` (its key never leaves it). */
export function makeCa(dir: string): TestCa {
  openssl(['req', '-x509', ...P256, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=granary-test-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  // Go and containers/image check these on the leaf: an IP SAN (no CN fallback) and serverAuth.
  writeFileSync(join(dir, 'leaf.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
  const ca = readFileSync(join(dir, 'ca.crt'));
  return {
    caFile: join(dir, 'ca.crt'),
    ca,
    agent: new Agent({ connect: { ca }, pipelining: 0 }),
    issue(name, serial) {
      openssl(['req', ...P256, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', String(serial), '-days', '2',
        '-extfile', 'leaf.ext', '-out', `${name}.crt`], dir);
      return { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
    },
  };
}

/** The common name of the certificate a new TLS connection to `port` is shown (verified against `ca`). */
export function presentedName(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port, ca }, () => {
      const cn = sock.getPeerCertificate().subject.CN;
      sock.end();
      resolve(Array.isArray(cn) ? cn.join(',') : (cn ?? ''));
    });
    sock.once('error', reject);
  });
}
