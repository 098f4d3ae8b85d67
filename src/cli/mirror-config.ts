/**
 * `granary mirror-config containerd|docker|podman`: prints the client-side configuration that makes container
 * runtimes pull through this Granary's OCI proxy repositories:
 *   containerd  one `/etc/containerd/certs.d/<host>/hosts.toml` per mirrored registry host; containerd then asks
 *               `/v2/<name>/…?ns=<host>` and Granary picks the proxy for that host (mirror mode)
 *   docker      `daemon.json` `registry-mirrors` — Docker mirrors Docker Hub only, and sends bare
 *               `/v2/library/<name>` paths, so the Docker Hub proxy must be Granary's `oci.defaultRepository`
 *   podman      `registries.conf` `[[registry]]` entries with a `[[registry.mirror]]` at `<granary>/<proxy repo>`
 */
import type { Command } from 'commander';
import { CliError, withBackendFlags, type BackendFlags } from './flags.ts';

export interface MirrorProxy {
  name: string;
  upstream: string;
  options?: Record<string, unknown>;
}

const CLIENTS = ['containerd', 'docker', 'podman'] as const;
type Client = (typeof CLIENTS)[number];

export function renderMirrorConfig(client: Client, server: string, proxies: MirrorProxy[], hostsOf: (p: MirrorProxy) => string[], isHub: (upstream: string) => boolean): string {
  const u = new URL(server);
  const plain = u.protocol === 'http:';
  const out: string[] = [];
  if (proxies.length === 0) return '# no OCI proxy repositories are configured: create one with `granary repo create <name> --format oci --kind proxy --upstream <url>`\n';
  if (client === 'containerd') {
    out.push(`# containerd: one hosts.toml per mirrored registry; set config_path = "/etc/containerd/certs.d" in the CRI registry config.`);
    for (const p of proxies) {
      for (const h of hostsOf(p)) {
        out.push('', `# /etc/containerd/certs.d/${h}/hosts.toml  (proxy repository ${p.name} → ${p.upstream})`);
        out.push(`server = "${h === 'docker.io' ? 'https://registry-1.docker.io' : `https://${h}`}"`, '');
        out.push(`[host."${u.origin}"]`, `  capabilities = ["pull", "resolve"]`);
        if (!plain) out.push(`  # ca = "/etc/containerd/certs.d/${h}/granary-ca.pem"`);
      }
    }
  } else if (client === 'docker') {
    const hub = proxies.find((p) => isHub(p.upstream) || hostsOf(p).includes('docker.io'));
    out.push('# /etc/docker/daemon.json — Docker mirrors Docker Hub only; other registries need containerd or podman.');
    if (!hub) out.push('# No proxy repository mirrors Docker Hub (upstream https://registry-1.docker.io): create one first.');
    else out.push(`# Docker asks for /v2/library/<name>: set oci.defaultRepository (GRANARY_OCI_DEFAULT_REPOSITORY) to "${hub.name}".`);
    const daemon: Record<string, unknown> = { 'registry-mirrors': [u.origin] };
    if (plain) daemon['insecure-registries'] = [u.host];
    out.push(JSON.stringify(daemon, null, 2));
  } else {
    out.push('# /etc/containers/registries.conf (or ~/.config/containers/registries.conf)');
    for (const p of proxies) {
      for (const h of hostsOf(p)) {
        out.push('', `# proxy repository ${p.name} → ${p.upstream}`, '[[registry]]', `prefix = "${h}"`, `location = "${h}"`, '', '[[registry.mirror]]', `location = "${u.host}/${p.name}"`);
        if (plain) out.push('insecure = true');
      }
    }
  }
  return out.join('\n') + '\n';
}

export function registerMirrorConfig(program: Command): void {
  withBackendFlags(
    program
      .command('mirror-config')
      .argument('<client>', `one of ${CLIENTS.join(', ')}`)
      .description("print containerd hosts.toml / docker daemon.json / podman registries.conf snippets for this server's OCI proxy repositories")
      .option('--server <url>', 'URL clients reach Granary at (default: --url, GRANARY_URL, or http://<host>:<port> of the config)'),
  ).action(async (client: string, f: BackendFlags & { server?: string }) => {
    if (!(CLIENTS as readonly string[]).includes(client)) throw new CliError(`unknown client ${JSON.stringify(client)}: use ${CLIENTS.join(', ')}`);
    const { withBackend } = await import('./backend.ts');
    const { isDockerHub, mirrorHostsOf } = await import('../repos/proxy/options.ts');
    let server = f.server ?? f.url ?? process.env.GRANARY_URL;
    if (!server) {
      const { loadConfig } = await import('../config/load.ts');
      const c = loadConfig({ file: f.config, overrides: f.dataDir ? { dataDir: f.dataDir } : {} });
      server = `${c.tls.certFile ? 'https' : 'http'}://${c.host === '0.0.0.0' ? '127.0.0.1' : c.host}:${c.port}`;
    }
    try {
      new URL(server);
    } catch {
      throw new CliError(`--server ${JSON.stringify(server)} is not a URL (e.g. http://granary.internal:8080)`);
    }
    const proxies = await withBackend(f, async (b) => (await b.listRepos()).filter((r) => r.format === 'oci' && r.kind === 'proxy' && r.upstream));
    const hostsOf = (p: MirrorProxy) => mirrorHostsOf(p.upstream, (p.options?.proxy as { hosts?: string[] } | undefined)?.hosts);
    process.stdout.write(renderMirrorConfig(client as Client, server, proxies as MirrorProxy[], hostsOf, isDockerHub));
  });
}
