/**
 * Docker token auth through the real server: `/v2/token` (GET with Basic or nothing, POST OAuth2 form), the
 * JWT's claims, the grants it carries, the verifier (expired, foreign key, refresh token misuse, disabled
 * user), the key kept in the data dir across restarts, and the registry accepting what the endpoint issued.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyRequest } from 'fastify';
import { SignJWT, calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, generateKeyPair, importJWK } from 'jose';
import type { JWK } from 'jose';
import { ADMIN_TOKEN, basic, startServer, type TestServer } from '../../helpers/server.ts';
import { ociChallenge, parseScopes, repositoryScope } from '../../../src/formats/oci/token.ts';

const ALICE_PW = 'alice-password-1';
const BOB_PW = 'bob-password-123';

let s: TestServer;
let aliceToken: string;

before(async () => {
  s = await startServer({ config: { oci: { tokenTtlSeconds: 120 } } });
  const { repos, accounts } = s.services;
  await repos.create({ name: 'pub', format: 'oci', anonymousRead: true }, 'test');
  await repos.create({ name: 'priv', format: 'oci', anonymousRead: false }, 'test');
  await repos.create({ name: 'other', format: 'oci', anonymousRead: false }, 'test');
  await repos.create({ name: 'files', format: 'generic', anonymousRead: true }, 'test');
  await accounts.addUser({ name: 'alice', password: ALICE_PW }, 'test');
  await accounts.addUser({ name: 'bob', password: BOB_PW }, 'test');
  await accounts.grant({ user: 'alice', repository: 'priv', role: 'write' }, 'test');
  await accounts.grant({ user: 'alice', repository: 'pub', role: 'write' }, 'test');
  await accounts.grant({ user: 'bob', repository: 'priv', role: 'read' }, 'test');
  aliceToken = (await accounts.createToken({ user: 'alice', name: 'ci' }, 'test')).token;
});
after(async () => {
  await s?.close();
});

type Access = { type: string; name: string; actions: string[] };
interface TokenBody {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
  scope?: string;
}

function tokenUrl(scopes: string[], extra: Record<string, string> = {}): string {
  const q = new URLSearchParams({ service: 'granary', ...extra });
  for (const sc of scopes) q.append('scope', sc);
  return `/v2/token?${q}`;
}

async function getToken(scopes: string[], auth: string | null, extra: Record<string, string> = {}): Promise<TokenBody> {
  const res = await s.fetch(tokenUrl(scopes, extra), { auth });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  return JSON.parse(text) as TokenBody;
}

async function postToken(form: Record<string, string>, contentType = 'application/x-www-form-urlencoded'): Promise<Response> {
  return s.fetch('/v2/token', {
    method: 'POST',
    auth: null,
    headers: { 'content-type': contentType },
    body: new URLSearchParams(form).toString(),
  });
}

const accessOf = (jwt: string): Access[] => decodeJwt(jwt).access as Access[];

async function ociError(res: Response, status: number, code: string | string[]): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  const body = JSON.parse(text) as { errors: { code: string; message: string }[] };
  assert.ok(Array.isArray(body.errors) && body.errors.length > 0, text);
  assert.ok((Array.isArray(code) ? code : [code]).includes(body.errors[0].code), text);
}

async function keyFile(): Promise<JWK> {
  return JSON.parse(await readFile(join(s.dataDir, 'keys', 'oci-token.jwk'), 'utf8')) as JWK;
}

/** A token signed with the server's own key but claims of our choosing. */
async function forge(claims: Record<string, unknown>, opts: { exp: number; sub?: string; aud?: string }): Promise<string> {
  const jwk = await keyFile();
  const key = await importJWK(jwk, 'ES256');
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: jwk.kid!, typ: 'JWT' })
    .setIssuer('granary')
    .setSubject(opts.sub ?? 'alice')
    .setAudience(opts.aud ?? 'granary')
    .setIssuedAt(now - 7200)
    .setNotBefore(now - 7200)
    .setExpirationTime(opts.exp)
    .setJti('forged')
    .sign(key);
}

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Pushes a one-layer image with a token; returns the manifest digest. */
async function pushImage(name: string, tag: string, bearer: string): Promise<string> {
  const layer = Buffer.from(`layer of ${name}:${tag}`);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] } }));
  for (const blob of [layer, config]) {
    const up = await s.fetch(`/v2/${name}/blobs/uploads/?digest=${sha256(blob)}`, {
      method: 'POST',
      auth: bearer,
      headers: { 'content-type': 'application/octet-stream' },
      body: blob,
    });
    assert.equal(up.status, 201, await up.text());
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
  });
  const put = await s.fetch(`/v2/${name}/manifests/${tag}`, {
    method: 'PUT',
    auth: bearer,
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  assert.equal(put.status, 201, await put.text());
  return sha256(manifest);
}

describe('GET /v2/token', () => {
  it('gives an anonymous caller pull only, and only on public repositories', async () => {
    const t = await getToken(['repository:pub/img:pull,push', 'repository:priv/app:pull'], null);
    assert.equal(t.token, t.access_token);
    assert.equal(t.expires_in, 120);
    assert.equal(t.refresh_token, undefined);
    const claims = decodeJwt(t.token);
    assert.equal(claims.sub, '');
    assert.deepEqual(claims.access, [
      { type: 'repository', name: 'pub/img', actions: ['pull'] },
      { type: 'repository', name: 'priv/app', actions: [] },
    ]);
  });

  it('issues an ES256 JWT with the documented claims, signed by the key in the data dir', async () => {
    const before = Math.floor(Date.now() / 1000);
    const t = await getToken(['repository:priv/app:pull'], basic('alice', ALICE_PW));
    const header = decodeProtectedHeader(t.token);
    const jwk = await keyFile();
    assert.equal(header.alg, 'ES256');
    assert.equal(header.kid, jwk.kid);
    assert.equal(jwk.kid, await calculateJwkThumbprint({ kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, y: jwk.y! }), 'kid is the RFC 7638 thumbprint');
    const c = decodeJwt(t.token);
    assert.equal(c.iss, 'granary');
    assert.equal(c.sub, 'alice');
    assert.equal(c.aud, 'granary');
    assert.equal(typeof c.jti, 'string');
    assert.ok(c.iat! >= before - 1);
    assert.equal(c.nbf, c.iat);
    assert.equal(c.exp! - c.iat!, 120);
    assert.equal(new Date(t.issued_at).getTime(), c.iat! * 1000);
    const mode = (await stat(join(s.dataDir, 'keys', 'oci-token.jwk'))).mode & 0o777;
    assert.equal(mode, 0o600);
  });

  it('grants a user with write pull and push, never delete beyond the role', async () => {
    const t = await getToken(['repository:priv/app:pull,push,delete'], basic('alice', ALICE_PW));
    assert.deepEqual(accessOf(t.token), [{ type: 'repository', name: 'priv/app', actions: ['pull', 'push'] }]);
    const b = await getToken(['repository:priv/app:pull,push'], basic('bob', BOB_PW));
    assert.deepEqual(accessOf(b.token), [{ type: 'repository', name: 'priv/app', actions: ['pull'] }]);
    const admin = await getToken(['repository:priv/app:pull,push,delete', 'repository:other/x:*'], basic('admin', ADMIN_TOKEN));
    assert.deepEqual(
      accessOf(admin.token).map((a) => a.actions),
      [['pull', 'push', 'delete'], ['*']],
    );
  });

  it('gives no actions on repositories the user may not read, that do not exist, or are not OCI', async () => {
    const t = await getToken(
      ['repository:other/x:pull', 'repository:nosuch/x:pull', 'repository:files/x:pull', 'repository:Bad/Name:pull', 'repository:pub/a:pull'],
      basic('alice', ALICE_PW),
    );
    assert.deepEqual(
      accessOf(t.token).map((a) => [a.name, a.actions]),
      [
        ['other/x', []],
        ['nosuch/x', []],
        ['files/x', []],
        ['Bad/Name', []],
        ['pub/a', ['pull']],
      ],
    );
  });

  it('accepts an API token as the password, several scopes in one parameter, and the catalog scope', async () => {
    const t = await getToken(['repository:priv/app:pull repository:pub/img:push', 'registry:catalog:*'], basic('alice', aliceToken), { account: 'alice' });
    assert.deepEqual(accessOf(t.token), [
      { type: 'repository', name: 'priv/app', actions: ['pull'] },
      { type: 'repository', name: 'pub/img', actions: ['push'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ]);
    assert.equal(decodeJwt(t.token).tid !== undefined, true, 'the API token is remembered');
    const anon = await getToken(['registry:catalog:*'], null);
    assert.deepEqual(accessOf(anon.token), [{ type: 'registry', name: 'catalog', actions: [] }]);
  });

  it('answers 401 in the OCI envelope for a wrong password, and 400 for a foreign service', async () => {
    await ociError(await s.fetch(tokenUrl(['repository:priv/app:pull']), { auth: basic('alice', 'wrong-password') }), 401, 'UNAUTHORIZED');
    await ociError(await s.fetch(tokenUrl(['repository:priv/app:pull']), { auth: basic('nobody', 'whatever-pw') }), 401, 'UNAUTHORIZED');
    const res = await s.fetch('/v2/token?service=elsewhere&scope=repository:pub/img:pull', { auth: null });
    assert.equal(res.status, 400, await res.text());
  });

  it('gives a refresh token with offline_token=true to a user, not to an anonymous caller', async () => {
    const t = await getToken(['repository:priv/app:pull'], basic('alice', ALICE_PW), { offline_token: 'true' });
    assert.equal(typeof t.refresh_token, 'string');
    assert.equal(decodeJwt(t.refresh_token!).token_use, 'refresh');
    const anon = await getToken(['repository:pub/img:pull'], null, { offline_token: 'true' });
    assert.equal(anon.refresh_token, undefined);
  });
});

describe('POST /v2/token (OAuth2 form)', () => {
  it('password grant, then refresh grant', async () => {
    const res = await postToken({
      grant_type: 'password',
      username: 'alice',
      password: ALICE_PW,
      service: 'granary',
      client_id: 'docker',
      access_type: 'offline',
      scope: 'repository:priv/app:pull,push',
    });
    const body = (await res.json()) as TokenBody;
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.scope, 'repository:priv/app:pull,push');
    assert.deepEqual(accessOf(body.access_token), [{ type: 'repository', name: 'priv/app', actions: ['pull', 'push'] }]);
    assert.ok(body.refresh_token);

    const again = await postToken(
      { grant_type: 'refresh_token', refresh_token: body.refresh_token!, service: 'granary', client_id: 'containerd-client', scope: 'repository:priv/app:pull' },
      'application/x-www-form-urlencoded; charset=utf-8',
    );
    const refreshed = (await again.json()) as TokenBody;
    assert.equal(again.status, 200, JSON.stringify(refreshed));
    assert.equal(decodeJwt(refreshed.access_token).sub, 'alice');
    assert.deepEqual(accessOf(refreshed.access_token), [{ type: 'repository', name: 'priv/app', actions: ['pull'] }]);
    assert.equal(refreshed.refresh_token, undefined, 'no new refresh token without access_type=offline');

    // A refresh token is not an access token, and the other way round.
    await ociError(await s.fetch('/v2/priv/app/tags/list', { auth: body.refresh_token }), 401, 'UNAUTHORIZED');
    await ociError(await postToken({ grant_type: 'refresh_token', refresh_token: body.access_token, service: 'granary' }), 401, 'UNAUTHORIZED');
  });

  it('refuses wrong passwords, unknown grants and non-form bodies', async () => {
    await ociError(await postToken({ grant_type: 'password', username: 'alice', password: 'nope-nope', service: 'granary' }), 401, 'UNAUTHORIZED');
    const unknown = await postToken({ grant_type: 'client_credentials', service: 'granary' });
    assert.equal(unknown.status, 400, await unknown.text());
    const missing = await postToken({ grant_type: 'password', username: 'alice', service: 'granary' });
    assert.equal(missing.status, 400, await missing.text());
    const json = await s.fetch('/v2/token', { method: 'POST', auth: null, headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.ok(json.status === 400 || json.status === 415, `${json.status} ${await json.text()}`);
  });

  it('a refresh token dies with its user and with its API token', async () => {
    const { accounts } = s.services;
    await accounts.addUser({ name: 'carol', password: 'carol-password-1' }, 'test');
    const created = await accounts.createToken({ user: 'carol', name: 'ci' }, 'test');
    const viaToken = (await (await postToken({ grant_type: 'password', username: 'carol', password: created.token, access_type: 'offline' })).json()) as TokenBody;
    const viaPassword = (await (await postToken({ grant_type: 'password', username: 'carol', password: 'carol-password-1', access_type: 'offline' })).json()) as TokenBody;
    assert.ok(viaToken.refresh_token && viaPassword.refresh_token);

    await accounts.revokeToken(created.info.id, 'test');
    await ociError(await postToken({ grant_type: 'refresh_token', refresh_token: viaToken.refresh_token }), 401, 'UNAUTHORIZED');
    assert.equal((await postToken({ grant_type: 'refresh_token', refresh_token: viaPassword.refresh_token })).status, 200);

    await accounts.updateUser('carol', { disabled: true }, 'test');
    await ociError(await postToken({ grant_type: 'refresh_token', refresh_token: viaPassword.refresh_token }), 401, 'UNAUTHORIZED');
    await ociError(await s.fetch('/v2/pub/img/tags/list', { auth: viaPassword.access_token }), 401, 'UNAUTHORIZED');
  });
});

describe('the registry accepts the tokens', () => {
  let pushed: string;

  it('a push token pushes; an anonymous token pulls a public repository', async () => {
    const t = await getToken(['repository:pub/img:pull,push'], basic('alice', ALICE_PW));
    pushed = await pushImage('pub/img', 'v1', t.token);
    const anon = await getToken(['repository:pub/img:pull'], null);
    const tags = await s.fetch('/v2/pub/img/tags/list', { auth: anon.token });
    assert.equal(tags.status, 200);
    assert.deepEqual(((await tags.json()) as { tags: string[] }).tags, ['v1']);
    const m = await s.fetch('/v2/pub/img/manifests/v1', { method: 'HEAD', auth: anon.token, headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(m.status, 200);
    assert.equal(m.headers.get('docker-content-digest'), pushed);
  });

  it('a token does not carry more than its access claims', async () => {
    const pullOnly = await getToken(['repository:pub/img:pull'], basic('alice', ALICE_PW));
    const blob = Buffer.from('not allowed');
    const up = await s.fetch(`/v2/pub/img/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', auth: pullOnly.token, body: blob });
    // 401 with error="insufficient_scope", as Distribution answers, so clients fetch a token with the scope.
    assert.match(up.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
    assert.match(up.headers.get('www-authenticate') ?? '', /scope="repository:pub\/img:pull,push"/);
    await ociError(up, 401, 'UNAUTHORIZED');
    const head = await s.fetch(`/v2/pub/img/blobs/${sha256(blob)}`, { method: 'HEAD' });
    assert.equal(head.status, 404, 'nothing was stored');
    // priv was not in the token at all, though alice may write there.
    const other = await s.fetch('/v2/priv/app/tags/list', { auth: pullOnly.token });
    assert.equal(other.status, 401);
    assert.match(other.headers.get('www-authenticate') ?? '', /insufficient_scope/);
    await other.arrayBuffer();
    // An anonymous token cannot push, whatever it asked for.
    const anon = await getToken(['repository:pub/img:pull,push'], null);
    const anonUp = await s.fetch(`/v2/pub/img/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', auth: anon.token, body: blob });
    await ociError(anonUp, 401, 'UNAUTHORIZED');
  });

  it('refuses an expired token, a token from another key, and a token for another audience', async () => {
    const access = [{ type: 'repository', name: 'pub/img', actions: ['pull'] }];
    const now = Math.floor(Date.now() / 1000);
    const expired = await forge({ access }, { exp: now - 3600 });
    await ociError(await s.fetch('/v2/pub/img/tags/list', { auth: expired }), 401, 'UNAUTHORIZED');
    const live = await forge({ access }, { exp: now + 600 });
    assert.equal((await s.fetch('/v2/pub/img/tags/list', { auth: live })).status, 200, 'the same token, unexpired, works');
    const otherAud = await forge({ access }, { exp: now + 600, aud: 'elsewhere' });
    await ociError(await s.fetch('/v2/pub/img/tags/list', { auth: otherAud }), 401, 'UNAUTHORIZED');

    const { privateKey } = await generateKeyPair('ES256');
    const jwk = await keyFile();
    for (const kid of [jwk.kid!, 'some-other-kid']) {
      const foreign = await new SignJWT({ access })
        .setProtectedHeader({ alg: 'ES256', kid })
        .setIssuer('granary')
        .setSubject('alice')
        .setAudience('granary')
        .setIssuedAt()
        .setExpirationTime('5m')
        .setJti('x')
        .sign(privateKey);
      await ociError(await s.fetch('/v2/pub/img/tags/list', { auth: foreign }), 401, 'UNAUTHORIZED');
    }
    // A tampered payload fails the signature.
    const good = (await getToken(['repository:pub/img:pull'], basic('alice', ALICE_PW))).token;
    const [h, , sig] = good.split('.');
    const evil = Buffer.from(JSON.stringify({ ...decodeJwt(good), access: [{ type: 'repository', name: 'priv/app', actions: ['pull', 'push'] }] })).toString('base64url');
    await ociError(await s.fetch('/v2/priv/app/tags/list', { auth: `${h}.${evil}.${sig}` }), 401, 'UNAUTHORIZED');
  });

  it('a token of a deleted user stops working', async () => {
    const { accounts } = s.services;
    await accounts.addUser({ name: 'dave', password: 'dave-password-1' }, 'test');
    await accounts.grant({ user: 'dave', repository: 'pub', role: 'read' }, 'test');
    const t = await getToken(['repository:pub/img:pull'], basic('dave', 'dave-password-1'));
    assert.equal((await s.fetch('/v2/pub/img/tags/list', { auth: t.token })).status, 200);
    await accounts.removeUser('dave', 'test');
    await ociError(await s.fetch('/v2/pub/img/tags/list', { auth: t.token }), 401, 'UNAUTHORIZED');
  });

  it('the 401 challenge names the token endpoint', async () => {
    const res = await s.fetch('/v2/priv/app/tags/list', { auth: null });
    assert.equal(res.status, 401);
    await res.arrayBuffer();
    const h = res.headers.get('www-authenticate') ?? '';
    assert.equal(h, `Bearer realm="${s.url}/v2/token",service="granary",scope="repository:priv/app:pull"`);
  });
});

describe('the signing key', () => {
  it('survives a restart: tokens issued before still verify', async () => {
    const dataDir = s.dataDir;
    const t = await getToken(['repository:pub/img:pull'], basic('alice', ALICE_PW));
    const kid = (await keyFile()).kid;
    const s2 = await startServer({ dataDir });
    try {
      const res = await s2.fetch('/v2/pub/img/tags/list', { auth: t.token });
      assert.equal(res.status, 200, await res.text());
      const t2 = (await (await s2.fetch(tokenUrl(['repository:pub/img:pull']), { auth: null })).json()) as TokenBody;
      assert.equal(decodeProtectedHeader(t2.token).kid, kid);
    } finally {
      await s2.close(); // keeps the data dir: it was given
    }
  });
});

describe('helpers', () => {
  it('parseScopes: several per value, classes, host:port names, merged duplicates, junk ignored', () => {
    assert.deepEqual(parseScopes(['repository:a/b:pull repository(plugin):c/d:push,pull', 'repository:a/b:push', 'junk', 'registry:catalog:*', 'repository:localhost:5000/x:pull']), [
      { type: 'repository', name: 'a/b', actions: ['pull', 'push'] },
      { type: 'repository', name: 'c/d', actions: ['push', 'pull'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
      { type: 'repository', name: 'localhost:5000/x', actions: ['pull'] },
    ]);
  });

  it('ociChallenge: realm from the request, or from config.baseUrl', () => {
    const req = (server: object) => ({ server, protocol: 'http', host: '127.0.0.1:5000' }) as unknown as FastifyRequest;
    assert.equal(ociChallenge(req({})), 'Bearer realm="http://127.0.0.1:5000/v2/token",service="granary"');
    assert.equal(
      ociChallenge(req({ granaryOciTokenBaseUrl: 'https://reg.example.com' }), repositoryScope('r/n', ['pull', 'push'])),
      'Bearer realm="https://reg.example.com/v2/token",service="granary",scope="repository:r/n:pull,push"',
    );
  });
});
