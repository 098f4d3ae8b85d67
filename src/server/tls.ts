/**
 * Built-in HTTPS: reads and checks `tls.certFile` / `tls.keyFile` once at start (a bad file stops the server with a
 * ConfigError naming the key), and afterwards watches both files so a certificate renewed in place (cert-manager,
 * ACME clients, a Kubernetes secret swap) is served to new connections without a restart. A replacement that
 * does not load keeps the previous certificate and logs a warning: renewal must never take the registry down.
 */
import { readFileSync, statSync } from 'node:fs';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { ResolvedConfig } from '../config/load.ts';
import { ConfigError } from '../config/errors.ts';

type TlsConfig = ResolvedConfig['tls'];

/** The PEM bytes handed to node:tls. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
}

/** The part of a TLS server the watcher needs (node:tls / node:https Server). */
export interface SecureContextTarget {
  setSecureContext(options: TlsMaterial): void;
}

/** Whether the config turns HTTPS on (load.ts already refused one file without the other). */
export function tlsEnabled(tls: TlsConfig): tls is TlsConfig & { certFile: string; keyFile: string } {
  return tls.certFile !== undefined && tls.keyFile !== undefined;
}

/**
 * Checks that the PEM bytes are a certificate and its private key, the errors naming the key at fault. Node's
 * own messages ("no start line", "key values mismatch") do not say which file is wrong.
 */
function check(tls: { certFile: string; keyFile: string }, m: TlsMaterial): TlsMaterial {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(m.cert);
  } catch (e) {
    throw new ConfigError('tls.certFile', `${tls.certFile} is not a PEM certificate: ${(e as Error).message}`);
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(m.key);
  } catch (e) {
    throw new ConfigError('tls.keyFile', `${tls.keyFile} is not a PEM private key: ${(e as Error).message}`);
  }
  if (!cert.checkPrivateKey(key)) throw new ConfigError('tls.keyFile', `${tls.keyFile} is not the private key of the certificate in ${tls.certFile}`);
  try {
    // What the server will do with them: catches what the checks above cannot (e.g. a broken chain after the leaf).
    createSecureContext(m);
  } catch (e) {
    throw new ConfigError('tls.certFile', `${tls.certFile} cannot be used: ${(e as Error).message}`);
  }
  return m;
}

function readOrFail(key: 'tls.certFile' | 'tls.keyFile', file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new ConfigError(key, `cannot read ${file}: ${(e as Error).message}`);
  }
}

/** Reads and checks both files at start; throws a ConfigError naming `tls.certFile` or `tls.keyFile`. */
export function loadTls(tls: TlsConfig & { certFile: string; keyFile: string }): TlsMaterial {
  return check(tls, { cert: readOrFail('tls.certFile', tls.certFile), key: readOrFail('tls.keyFile', tls.keyFile) });
}

/** What identifies this version of the files: a rename over one (Kubernetes' ..data swap) changes the inode. */
function stampOf(files: string[]): string {
  return files
    .map((f) => {
      try {
        const s = statSync(f);
        return `${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch (e) {
        return `error:${(e as NodeJS.ErrnoException).code ?? 'unknown'}`;
      }
    })
    .join('|');
}

/**
 * Every `tls.reloadSeconds`, re-reads both files when either changed (inode, size or mtime) and swaps the server's
 * secure context; connections already open keep theirs. A pair that does not load is logged once per change and
 * not retried until the files change again — a renewal that writes the certificate and then the key is two
 * changes, so the second one is picked up. The files are small and read only when they changed, so synchronous
 * reads cost nothing. Returns the function that stops watching.
 */
export function watchTls(server: SecureContextTarget, tls: TlsConfig & { certFile: string; keyFile: string }, log: Logger): () => void {
  if (tls.reloadSeconds === 0) return () => {};
  const files = [tls.certFile, tls.keyFile];
  let seen = stampOf(files);
  const timer = setInterval(() => {
    const now = stampOf(files);
    if (now === seen) return;
    seen = now;
    try {
      const m = loadTls(tls);
      server.setSecureContext(m);
      log.info({ certFile: tls.certFile, validTo: new X509Certificate(m.cert).validTo }, 'tls certificate reloaded');
    } catch (e) {
      log.warn({ err: (e as Error).message, certFile: tls.certFile, keyFile: tls.keyFile }, 'tls reload failed; still serving the previous certificate');
    }
  }, tls.reloadSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
