/**
 * Just enough of an OCI Distribution client to push to another registry: blob existence, monolithic blob upload
 * (streamed, never buffered), manifest PUT, the referrers API probe — with Basic credentials or the Docker token
 * flow (a 401 naming a Bearer realm is answered by fetching a token for the scope and retrying once).
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';

export class RemoteError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

function parseChallenge(h: string | string[] | undefined): Challenge | null {
  const v = Array.isArray(h) ? h[0] : h;
  if (!v) return null;
  const space = v.indexOf(' ');
  const scheme = (space < 0 ? v : v.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  for (const m of v.slice(space + 1).matchAll(/([a-zA-Z_]+)="([^"]*)"/g)) params[m[1].toLowerCase()] = m[2];
  return { scheme, params };
}

export class RegistryClient {
  readonly base: string;
  readonly #basic: string | null;
  readonly #agent = new Agent({ keepAliveTimeout: 4_000 });
  /** Bearer tokens by scope, reused until the registry refuses one. */
  readonly #tokens = new Map<string, string>();
  /** Set once the registry asked for Basic: from then on credentials go with every request. */
  #basicAsked = false;

  constructor(base: string, creds?: { username?: string; password?: string }) {
    this.base = base.replace(/\/+$/, '');
    this.#basic = creds?.username ? 'Basic ' + Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64') : null;
  }

  close(): Promise<void> {
    return this.#agent.destroy();
  }

  async #token(ch: Challenge, scope: string): Promise<string> {
    const realm = ch.params.realm;
    if (!realm) throw new RemoteError(401, 'registry asked for a bearer token without naming a realm');
    const u = new URL(realm);
    if (ch.params.service) u.searchParams.set('service', ch.params.service);
    u.searchParams.set('scope', scope);
    const res = await request(u, { headers: this.#basic ? { authorization: this.#basic } : {}, dispatcher: this.#agent });
    const body = (await res.body.json().catch(() => ({}))) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (res.statusCode !== 200 || !token) throw new RemoteError(res.statusCode, `token endpoint ${u.origin}${u.pathname} refused (${res.statusCode})`);
    return token;
  }

  /**
   * One request to the registry, authenticated for `scope` the way docker does it: without credentials until the
   * registry's 401 says which scheme it wants (Basic, or a Bearer token from its realm). A body that is a stream
   * cannot be replayed, so streaming requests go out only after an earlier request of the same scope settled the
   * credentials.
   */
  async #send(method: Dispatcher.HttpMethod, path: string, scope: string, opts: { headers?: Record<string, string>; body?: Buffer | Readable } = {}) {
    const url = path.startsWith('http') ? path : this.base + path;
    for (let attempt = 0; ; attempt++) {
      const token = this.#tokens.get(scope);
      const auth = token ? `Bearer ${token}` : this.#basicAsked ? this.#basic : null;
      const res = await request(url, {
        method,
        headers: { ...(auth ? { authorization: auth } : {}), ...opts.headers },
        body: opts.body,
        dispatcher: this.#agent,
      });
      if (res.statusCode !== 401 || attempt > 0 || (opts.body && !Buffer.isBuffer(opts.body))) return res;
      await res.body.dump();
      const ch = parseChallenge(res.headers['www-authenticate']);
      if (ch?.scheme === 'bearer') this.#tokens.set(scope, await this.#token(ch, scope));
      else if (ch?.scheme === 'basic' && this.#basic && !this.#basicAsked) this.#basicAsked = true;
      else return res;
    }
  }

  async #expect(res: Dispatcher.ResponseData, ok: number[], what: string): Promise<void> {
    if (ok.includes(res.statusCode)) {
      await res.body.dump();
      return;
    }
    const text = await res.body.text().catch(() => '');
    throw new RemoteError(res.statusCode, `${what}: HTTP ${res.statusCode} ${text.slice(0, 300)}`);
  }

  async hasBlob(name: string, digest: string): Promise<boolean> {
    const res = await this.#send('HEAD', `/v2/${name}/blobs/${digest}`, `repository:${name}:pull,push`);
    await res.body.dump();
    if (res.statusCode === 200) return true;
    if (res.statusCode === 404) return false;
    throw new RemoteError(res.statusCode, `HEAD blob ${digest} on ${this.base}/${name}: HTTP ${res.statusCode}`);
  }

  async pushBlob(name: string, digest: string, size: number, open: () => Promise<Readable>): Promise<'exists' | 'pushed'> {
    if (await this.hasBlob(name, digest)) return 'exists';
    const scope = `repository:${name}:pull,push`;
    const start = await this.#send('POST', `/v2/${name}/blobs/uploads/`, scope);
    const location = start.headers.location;
    await this.#expect(start, [202], `starting an upload on ${this.base}/${name}`);
    if (typeof location !== 'string') throw new RemoteError(502, `${this.base} started an upload without a Location`);
    const target = new URL(location, this.base + '/');
    target.searchParams.set('digest', digest);
    const put = await this.#send('PUT', target.toString(), scope, {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: await open(),
    });
    await this.#expect(put, [201], `uploading blob ${digest} to ${this.base}/${name}`);
    return 'pushed';
  }

  async putManifest(name: string, ref: string, mediaType: string, bytes: Buffer): Promise<void> {
    const res = await this.#send('PUT', `/v2/${name}/manifests/${ref}`, `repository:${name}:pull,push`, { headers: { 'content-type': mediaType }, body: bytes });
    await this.#expect(res, [201], `putting manifest ${ref} to ${this.base}/${name}`);
  }

  /** Whether the registry serves the OCI 1.1 referrers API (else clients read the referrers tag schema). */
  async referrersApi(name: string, digest: string): Promise<boolean> {
    const res = await this.#send('GET', `/v2/${name}/referrers/${digest}`, `repository:${name}:pull`);
    await res.body.dump();
    return res.statusCode === 200;
  }

  async listTags(name: string): Promise<string[]> {
    const out: string[] = [];
    let next: string | null = `/v2/${name}/tags/list?n=1000`;
    while (next) {
      const res: Dispatcher.ResponseData = await this.#send('GET', next, `repository:${name}:pull`);
      if (res.statusCode === 404) {
        await res.body.dump();
        return out;
      }
      if (res.statusCode !== 200) return this.#expect(res, [200], `listing tags of ${this.base}/${name}`).then(() => out);
      out.push(...(((await res.body.json()) as { tags?: string[] | null }).tags ?? []));
      // Pagination per the distribution spec: Link: </v2/…?last=…>; rel="next".
      const link = res.headers.link;
      next = typeof link === 'string' ? (/<([^>]+)>;\s*rel="next"/.exec(link)?.[1] ?? null) : null;
    }
    return out;
  }

  /** The blob as a stream (the caller verifies it while storing). */
  async getBlob(name: string, digest: string): Promise<Readable> {
    const res = await this.#send('GET', `/v2/${name}/blobs/${digest}`, `repository:${name}:pull`);
    if (res.statusCode !== 200) {
      await this.#expect(res, [200], `fetching blob ${digest} from ${this.base}/${name}`);
    }
    return res.body;
  }

  /** Descriptors of the referrers of `digest`: the referrers API, else the referrers tag schema, else none. */
  async referrers(name: string, digest: string): Promise<{ mediaType: string; digest: string; size: number; artifactType?: string; annotations?: Record<string, string> }[]> {
    const res = await this.#send('GET', `/v2/${name}/referrers/${digest}`, `repository:${name}:pull`);
    let body: Buffer | null = null;
    if (res.statusCode === 200) body = Buffer.from(await res.body.arrayBuffer());
    else {
      await res.body.dump();
      const [alg, hex] = digest.split(':');
      body = await this.getManifest(name, `${alg}-${hex.slice(0, 64)}`, 'application/vnd.oci.image.index.v1+json');
    }
    if (!body) return [];
    return ((JSON.parse(body.toString('utf8')) as { manifests?: [] }).manifests ?? []);
  }

  /**
   * The digest the registry has for manifest `ref`, or null when it has none: a HEAD, whose Docker-Content-Digest
   * is what registries answer; without that header, the manifest is fetched and hashed.
   */
  async manifestDigest(name: string, ref: string, accept: string): Promise<string | null> {
    // The push scope, as for blobs: the copy that may follow reuses the same token.
    const res = await this.#send('HEAD', `/v2/${name}/manifests/${ref}`, `repository:${name}:pull,push`, { headers: { accept } });
    await res.body.dump();
    if (res.statusCode === 404) return null;
    if (res.statusCode !== 200) throw new RemoteError(res.statusCode, `HEAD manifest ${ref} on ${this.base}/${name}: HTTP ${res.statusCode}`);
    const header = res.headers['docker-content-digest'];
    if (typeof header === 'string' && /^sha256:[0-9a-f]{64}$/.test(header)) return header;
    const bytes = await this.getManifest(name, ref, accept);
    return bytes ? `sha256:${createHash('sha256').update(bytes).digest('hex')}` : null;
  }

  async getManifest(name: string, ref: string, accept: string): Promise<Buffer | null> {
    const res = await this.#send('GET', `/v2/${name}/manifests/${ref}`, `repository:${name}:pull`, { headers: { accept } });
    if (res.statusCode === 404) {
      await res.body.dump();
      return null;
    }
    if (res.statusCode !== 200) return this.#expect(res, [200], `reading manifest ${ref}`).then(() => null);
    return Buffer.from(await res.body.arrayBuffer());
  }
}
