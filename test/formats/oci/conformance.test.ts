/**
 * The four workflows of the OCI distribution-spec v1.1 conformance suite (pull, push, content discovery,
 * content management), over real HTTP against a real server — with the error cases the spec and its suite
 * test, Granary's policies (immutable tags, delete off, manifest size), permissions (catalog filtering,
 * mounts, deletes), the default repository, and the events each change appends. After every refused
 * request the test checks that nothing was stored: no new event, the bytes absent from the blob store.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { lastEventSeq, listEvents } from '../../../src/meta/events.ts';
import { compareTags } from '../../../src/formats/oci/http.ts';
import { ADMIN_TOKEN, basic, startServer, type TestServer } from '../../helpers/server.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
const SCHEMA1 = 'application/vnd.docker.distribution.manifest.v1+prettyjws';
const ALL_ACCEPT = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST, SCHEMA1, 'application/vnd.docker.distribution.manifest.v1+json'].join(', ');
const EMPTY_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

const UPLOAD_LIMIT = 256 * 1024;
const ALICE = basic('alice', 'alice-password-1'); // write + delete on reg, write on pub
const BOB = basic('bob', 'bob-password-123'); // read on reg
const CAROL = basic('carol', 'carol-password-1'); // write on reg (no delete), read on other
const ADMIN = `Bearer ${ADMIN_TOKEN}`;

const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const sha512 = (b: Buffer | string): string => `sha512:${createHash('sha512').update(b).digest('hex')}`;
let counter = 0;
/** Distinct content every call, so tests never see each other's blobs. */
const unique = (label: string, size = 0): Buffer => {
  const head = Buffer.from(`${label}-${++counter}-${process.pid}-`);
  return size > head.length ? Buffer.concat([head, Buffer.alloc(size - head.length, counter % 251)]) : head;
};

let s: TestServer;

interface ErrorBody {
  errors: { code: string; message: string; detail?: Record<string, unknown> }[];
}

/** Asserts an OCI error answer: status, the envelope, the codes in order. Returns the body. */
async function expectError(res: Response, status: number, ...codes: string[]): Promise<ErrorBody> {
  const text = await res.text();
  assert.equal(res.status, status, `${res.status} ${text}`);
  assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  if (res.headers.get('content-length') === '0' || text === '') return { errors: [] }; // HEAD
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const body = JSON.parse(text) as ErrorBody;
  assert.deepEqual(
    body.errors.map((e) => e.code),
    codes,
    text,
  );
  return body;
}

async function expectStatus(res: Response, status: number): Promise<string> {
  const text = await res.text();
  assert.equal(res.status, status, `${res.status} ${text}`);
  return text;
}

const req = (path: string, init: RequestInit & { auth?: string | null } = {}) => s.fetch(path, { auth: ALICE, ...init });

/** Monolithic upload (POST ?digest=). */
async function pushBlob(name: string, bytes: Buffer, auth: string | null = ALICE): Promise<string> {
  const digest = sha256(bytes);
  const res = await s.fetch(`/v2/${name}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes, auth });
  await expectStatus(res, 201);
  return digest;
}

async function startSession(name: string, auth: string | null = ALICE): Promise<string> {
  const res = await s.fetch(`/v2/${name}/blobs/uploads/`, { method: 'POST', headers: { 'content-length': '0' }, auth });
  await expectStatus(res, 202);
  const loc = res.headers.get('location');
  assert.ok(loc, 'a 202 carries Location');
  return loc;
}

interface Image {
  config: Buffer;
  layers: Buffer[];
  manifest: string;
  digest: string;
}

function imageManifest(config: Buffer, layers: Buffer[], extra: Record<string, unknown> = {}, mediaType = OCI_MANIFEST): string {
  const docker = mediaType === DOCKER_MANIFEST;
  return JSON.stringify({
    schemaVersion: 2,
    mediaType,
    config: { mediaType: docker ? DOCKER_CONFIG : OCI_CONFIG, digest: sha256(config), size: config.length },
    layers: layers.map((l) => ({ mediaType: docker ? DOCKER_LAYER : OCI_LAYER, digest: sha256(l), size: l.length })),
    ...extra,
  });
}

async function putManifest(name: string, ref: string, body: string, type = OCI_MANIFEST, auth: string | null = ALICE): Promise<Response> {
  return s.fetch(`/v2/${name}/manifests/${ref}`, { method: 'PUT', body, headers: { 'content-type': type }, auth });
}

/** Pushes config + layers + manifest under `tag`. */
async function pushImage(name: string, tag: string, opts: { layers?: number; extra?: Record<string, unknown>; auth?: string } = {}): Promise<Image> {
  const config = unique('config');
  const layers = Array.from({ length: opts.layers ?? 1 }, (_, i) => unique(`layer${i}`, 1000));
  for (const b of [config, ...layers]) await pushBlob(name, b, opts.auth);
  const manifest = imageManifest(config, layers, opts.extra);
  const res = await putManifest(name, tag, manifest, OCI_MANIFEST, opts.auth);
  await expectStatus(res, 201);
  return { config, layers, manifest, digest: sha256(manifest) };
}

async function tagsOf(name: string, auth: string | null = ALICE): Promise<string[]> {
  const res = await s.fetch(`/v2/${name}/tags/list`, { auth });
  return (JSON.parse(await expectStatus(res, 200)) as { tags: string[] }).tags;
}

/**
 * A request sent byte for byte as given: fetch (WHATWG URL) would resolve `..` segments before sending, and the
 * server must see them to refuse them.
 */
function rawRequest(method: string, path: string, body?: Buffer, auth = ALICE): Promise<Response> {
  return new Promise((resolve, reject) => {
    const u = new URL(s.url);
    const r = request({ host: u.hostname, port: u.port, method, path, headers: { authorization: auth, 'content-length': String(body?.length ?? 0) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(new Response(res.statusCode === 204 || method === 'HEAD' ? null : Buffer.concat(chunks), { status: res.statusCode, headers: res.headers as Record<string, string> })));
    });
    r.on('error', reject);
    r.end(body);
  });
}

/** Runs `fn` (a refused request) and asserts it changed nothing: no event appended. */
async function refusedWithoutTrace(fn: () => Promise<void>): Promise<void> {
  const before = await lastEventSeq(s.services.meta.db);
  await fn();
  assert.equal(await lastEventSeq(s.services.meta.db), before, 'a refused request appended an event');
}

before(async () => {
  s = await startServer({ config: { limits: { uploadBytes: UPLOAD_LIMIT } } });
  const { repos, accounts } = s.services;
  await repos.create({ name: 'reg', format: 'oci' }, 'test');
  await repos.create({ name: 'other', format: 'oci' }, 'test');
  await repos.create({ name: 'pub', format: 'oci', anonymousRead: true }, 'test');
  await repos.create({ name: 'locked', format: 'oci', options: { immutableTags: true, allowDelete: false, maxManifestBytes: 2048 } }, 'test');
  await repos.create({ name: 'files', format: 'generic' }, 'test');
  await accounts.addUser({ name: 'alice', password: 'alice-password-1' }, 'test');
  await accounts.addUser({ name: 'bob', password: 'bob-password-123' }, 'test');
  await accounts.addUser({ name: 'carol', password: 'carol-password-1' }, 'test');
  await accounts.grant({ user: 'alice', repository: 'reg', role: 'delete' }, 'test');
  await accounts.grant({ user: 'alice', repository: 'pub', role: 'write' }, 'test');
  await accounts.grant({ user: 'alice', repository: 'locked', role: 'delete' }, 'test');
  await accounts.grant({ user: 'bob', repository: 'reg', role: 'read' }, 'test');
  await accounts.grant({ user: 'carol', repository: 'reg', role: 'write' }, 'test');
  await accounts.grant({ user: 'carol', repository: 'other', role: 'read' }, 'test');
});
after(async () => {
  await s?.close();
});

// -------------------------------------------------------------------------------------------------------------
describe('pull', () => {
  let img: Image;
  before(async () => {
    img = await pushImage('reg/pull/app', 'v1', { layers: 2 });
  });

  it('GET /v2/ answers 200 {} to a caller with credentials, 401 + challenge to an anonymous one', async () => {
    const res = await req('/v2/');
    assert.equal(await expectStatus(res, 200), '{}');
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
    const anon = await s.fetch('/v2/', { auth: null });
    await expectError(anon, 401, 'UNAUTHORIZED');
    assert.match(anon.headers.get('www-authenticate') ?? '', /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/v2\/token",service="granary"$/);
  });

  it('HEAD and GET a manifest by tag and by digest: exact bytes, stored type, digest, length', async () => {
    for (const ref of ['v1', img.digest]) {
      const head = await req(`/v2/reg/pull/app/manifests/${ref}`, { method: 'HEAD', headers: { accept: ALL_ACCEPT } });
      await expectStatus(head, 200);
      assert.equal(head.headers.get('docker-content-digest'), img.digest);
      assert.equal(head.headers.get('content-type'), OCI_MANIFEST);
      assert.equal(head.headers.get('content-length'), String(Buffer.byteLength(img.manifest)));
      const get = await req(`/v2/reg/pull/app/manifests/${ref}`, { headers: { accept: ALL_ACCEPT } });
      assert.equal(await expectStatus(get, 200), img.manifest);
      assert.equal(get.headers.get('docker-content-digest'), img.digest);
      assert.equal(get.headers.get('content-type'), OCI_MANIFEST);
      assert.equal(get.headers.get('etag'), `"${img.digest}"`);
    }
    // Without Accept, and with an Accept that does not list the type: still the stored bytes (negotiate.ts).
    assert.equal(await expectStatus(await req('/v2/reg/pull/app/manifests/v1'), 200), img.manifest);
    assert.equal(await expectStatus(await req('/v2/reg/pull/app/manifests/v1', { headers: { accept: DOCKER_MANIFEST } }), 200), img.manifest);
    const cond = await req(`/v2/reg/pull/app/manifests/v1`, { headers: { 'if-none-match': `"${img.digest}"` } });
    await expectStatus(cond, 304);
  });

  it('GET and HEAD blobs, with ranges', async () => {
    const layer = img.layers[0];
    const d = sha256(layer);
    const head = await req(`/v2/reg/pull/app/blobs/${d}`, { method: 'HEAD' });
    await expectStatus(head, 200);
    assert.equal(head.headers.get('content-length'), String(layer.length));
    assert.equal(head.headers.get('docker-content-digest'), d);
    const get = await req(`/v2/reg/pull/app/blobs/${d}`);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), layer);
    assert.equal(get.headers.get('accept-ranges'), 'bytes');
    const part = await req(`/v2/reg/pull/app/blobs/${d}`, { headers: { range: 'bytes=10-19' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 10-19/${layer.length}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), layer.subarray(10, 20));
    const beyond = await req(`/v2/reg/pull/app/blobs/${d}`, { headers: { range: `bytes=${layer.length}-` } });
    await expectError(beyond, 416, 'RANGE_INVALID');
    assert.equal(beyond.headers.get('content-range'), `bytes */${layer.length}`);
  });

  it('unknown manifests and blobs: clean 404s (HEAD twice, as skopeo does)', async () => {
    const missing = sha256(unique('missing'));
    for (let i = 0; i < 2; i++) {
      const head = await req(`/v2/reg/pull/app/blobs/${missing}`, { method: 'HEAD' });
      assert.equal(head.status, 404);
      await head.arrayBuffer();
    }
    await expectError(await req(`/v2/reg/pull/app/blobs/${missing}`), 404, 'BLOB_UNKNOWN');
    await expectError(await req('/v2/reg/pull/app/manifests/nosuchtag'), 404, 'MANIFEST_UNKNOWN');
    await expectError(await req(`/v2/reg/pull/app/manifests/${missing}`), 404, 'MANIFEST_UNKNOWN');
    await expectError(await req('/v2/reg/pull/app/manifests/sha256:totallywrong'), 404, 'MANIFEST_UNKNOWN');
    assert.equal((await req(`/v2/reg/pull/app/manifests/${missing}`, { method: 'HEAD' })).status, 404);
  });

  it('a blob is readable only in the image it was pushed or mounted to', async () => {
    const d = sha256(img.layers[0]);
    await expectError(await req(`/v2/reg/pull/other/blobs/${d}`), 404, 'BLOB_UNKNOWN');
    await expectError(await req(`/v2/other/pull/app/blobs/${d}`, { auth: null }), 401, 'UNAUTHORIZED');
    await expectError(await s.fetch(`/v2/reg/pull/app/manifests/v1`, { auth: null }), 401, 'UNAUTHORIZED');
  });

  it('malformed and unsupported digests are DIGEST_INVALID', async () => {
    for (const d of ['sha256:abc', `sha256:${'A'.repeat(64)}`, `sha384:${'a'.repeat(96)}`, `md5:${'a'.repeat(32)}`]) {
      await expectError(await req(`/v2/reg/pull/app/blobs/${d}`), 400, 'DIGEST_INVALID');
    }
  });

  it('sha512 blobs and manifests round-trip under their sha512 digest', async () => {
    const blob = unique('sha512-blob', 300);
    const d = sha512(blob);
    await expectStatus(await req(`/v2/reg/pull/app/blobs/uploads/?digest=${d}`, { method: 'POST', body: blob }), 201);
    const get = await req(`/v2/reg/pull/app/blobs/${d}`);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), blob);
    assert.equal(get.headers.get('docker-content-digest'), d);
    const m512 = sha512(img.manifest);
    const put = await putManifest('reg/pull/app', m512, img.manifest);
    await expectStatus(put, 201);
    assert.equal(put.headers.get('docker-content-digest'), m512);
    const res = await req(`/v2/reg/pull/app/manifests/${m512}`);
    assert.equal(await expectStatus(res, 200), img.manifest);
    assert.equal(res.headers.get('docker-content-digest'), m512);
  });

  it('anonymous callers read a repository with anonymousRead', async () => {
    const pub = await (async () => {
      const config = unique('pubcfg');
      await pushBlob('pub/app', config);
      const m = imageManifest(config, []);
      await expectStatus(await putManifest('pub/app', 'latest', m), 201);
      return m;
    })();
    assert.equal(await expectStatus(await s.fetch('/v2/pub/app/manifests/latest', { auth: null }), 200), pub);
    const denied = await s.fetch('/v2/pub/app/manifests/other', { method: 'PUT', body: pub, headers: { 'content-type': OCI_MANIFEST }, auth: null });
    await expectError(denied, 401, 'UNAUTHORIZED');
    assert.equal(denied.headers.get('www-authenticate')?.endsWith(',scope="repository:pub/app:pull,push"'), true, denied.headers.get('www-authenticate') ?? '');
  });
});

// -------------------------------------------------------------------------------------------------------------
describe('push', () => {
  const name = 'reg/push/app';

  it('streamed: POST, one PATCH without Content-Range, PUT ?digest= (percent-encoded) with an empty body', async () => {
    const blob = unique('streamed', 5000);
    const loc = await startSession(name);
    const patch = await req(loc, { method: 'PATCH', body: blob, headers: { 'content-type': 'application/octet-stream' } });
    await expectStatus(patch, 202);
    assert.equal(patch.headers.get('range'), `0-${blob.length - 1}`);
    assert.ok(patch.headers.get('docker-upload-uuid'));
    await expectError(await req(`/v2/${name}/blobs/${sha256(blob)}`, { method: 'HEAD' }), 404);
    const put = await req(`${patch.headers.get('location')}?digest=${encodeURIComponent(sha256(blob))}`, { method: 'PUT' });
    await expectStatus(put, 201);
    assert.equal(put.headers.get('location'), `/v2/${name}/blobs/${sha256(blob)}`);
    assert.equal(put.headers.get('docker-content-digest'), sha256(blob));
    const get = await req(put.headers.get('location')!);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), blob);
  });

  it('monolithic: POST ?digest= with the body, and POST then a single PUT with the body', async () => {
    const a = unique('mono-a', 700);
    const post = await req(`/v2/${name}/blobs/uploads/?digest=${sha256(a)}`, { method: 'POST', body: a, headers: { 'content-type': 'application/octet-stream' } });
    await expectStatus(post, 201);
    assert.equal(post.headers.get('location'), `/v2/${name}/blobs/${sha256(a)}`);
    const b = unique('mono-b', 700);
    const loc = await startSession(name);
    await expectStatus(await req(`${loc}?digest=${sha256(b)}`, { method: 'PUT', body: b }), 201);
    await expectStatus(await req(`/v2/${name}/blobs/${sha256(b)}`, { method: 'HEAD' }), 200);
  });

  it('chunked: in-order checks (416 with Location and Range), status, and the closing PUT', async () => {
    const blob = unique('chunked', 3000);
    const c1 = blob.subarray(0, 1000);
    const c2 = blob.subarray(1000);
    const loc = await startSession(name);
    const status0 = await req(loc);
    await expectStatus(status0, 204);
    assert.equal(status0.headers.get('range'), '0-0');

    const early = await req(loc, { method: 'PATCH', body: c2, headers: { 'content-range': `1000-${blob.length - 1}`, 'content-type': 'application/octet-stream' } });
    await expectError(early, 416, 'RANGE_INVALID');
    assert.equal(early.headers.get('location'), loc);
    assert.equal(early.headers.get('range'), '0-0');

    const first = await req(loc, { method: 'PATCH', body: c1, headers: { 'content-range': '0-999' } });
    await expectStatus(first, 202);
    assert.equal(first.headers.get('range'), '0-999');
    assert.equal(first.headers.get('location'), loc);

    const retry = await req(loc, { method: 'PATCH', body: c1, headers: { 'content-range': '0-999' } });
    await expectError(retry, 416, 'RANGE_INVALID');
    assert.equal(retry.headers.get('range'), '0-999');

    const status = await req(loc);
    await expectStatus(status, 204);
    assert.equal(status.headers.get('range'), '0-999');
    assert.equal(status.headers.get('location'), loc);
    assert.equal(status.headers.get('docker-upload-uuid'), loc.split('/').pop());

    await expectStatus(await req(loc, { method: 'PATCH', body: c2, headers: { 'content-range': `1000-${blob.length - 1}` } }), 202);
    await expectStatus(await req(`${loc}?digest=${sha256(blob)}`, { method: 'PUT', headers: { 'content-length': '0' } }), 201);
    const get = await req(`/v2/${name}/blobs/${sha256(blob)}`);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), blob);
  });

  it('the closing PUT may carry the last chunk with its Content-Range', async () => {
    const blob = unique('last-chunk', 2000);
    const loc = await startSession(name);
    await expectStatus(await req(loc, { method: 'PATCH', body: blob.subarray(0, 500), headers: { 'content-range': '0-499' } }), 202);
    const put = await req(`${loc}?digest=${sha256(blob)}`, { method: 'PUT', body: blob.subarray(500), headers: { 'content-range': `500-${blob.length - 1}` } });
    await expectStatus(put, 201);
    await expectStatus(await req(`/v2/${name}/blobs/${sha256(blob)}`, { method: 'HEAD' }), 200);
  });

  it('a chunk whose length disagrees with its Content-Range is SIZE_INVALID and is not kept', async () => {
    const loc = await startSession(name);
    await expectError(await req(loc, { method: 'PATCH', body: Buffer.alloc(5), headers: { 'content-range': '0-9' } }), 400, 'SIZE_INVALID');
    // Chunked transfer (no Content-Length): the count is checked as the bytes arrive.
    const stream = new ReadableStream({
      start(ctl) {
        ctl.enqueue(new Uint8Array(5));
        ctl.close();
      },
    });
    const chunked = await req(loc, { method: 'PATCH', body: stream, headers: { 'content-range': '0-9' }, duplex: 'half' } as RequestInit);
    await expectError(chunked, 400, 'SIZE_INVALID');
    const status = await req(loc);
    await expectStatus(status, 204);
    assert.equal(status.headers.get('range'), '0-0', 'nothing of the refused chunks stayed');
  });

  it('a wrong digest leaves nothing: not visible, not stored, session gone, no event', async () => {
    const blob = unique('wrong', 900);
    const wrong = sha256(unique('other'));
    await refusedWithoutTrace(async () => {
      const loc = await startSession(name);
      await expectStatus(await req(loc, { method: 'PATCH', body: blob }), 202);
      const put = await req(`${loc}?digest=${wrong}`, { method: 'PUT' });
      const body = await expectError(put, 400, 'DIGEST_INVALID');
      assert.equal(body.errors[0].detail?.digest, wrong);
      await expectError(await req(loc), 404, 'BLOB_UPLOAD_UNKNOWN');
      await expectError(await req(`/v2/${name}/blobs/uploads/?digest=${wrong}`, { method: 'POST', body: blob }), 400, 'DIGEST_INVALID');
      await expectError(await req(`/v2/${name}/blobs/${wrong}`), 404, 'BLOB_UNKNOWN');
      await expectError(await req(`/v2/${name}/blobs/${sha256(blob)}`), 404, 'BLOB_UNKNOWN');
    });
    assert.equal(await s.services.blobs.stat(sha256(blob)), null);
    assert.equal(await s.services.blobs.stat(wrong), null);
    const loc = await startSession(name);
    await expectError(await req(`${loc}`, { method: 'PUT' }), 400, 'DIGEST_INVALID'); // no ?digest= at all
    await expectError(await req(`${loc}?digest=sha384:${'a'.repeat(96)}`, { method: 'PUT' }), 400, 'DIGEST_INVALID');
    await expectError(await req(`/v2/${name}/blobs/uploads/?digest=sha256:nothex`, { method: 'POST', body: blob }), 400, 'DIGEST_INVALID');
  });

  it('sha512 through a chunked session', async () => {
    const blob = unique('sha512-session', 1500);
    const loc = await startSession(name);
    await expectStatus(await req(loc, { method: 'PATCH', body: blob }), 202);
    await expectStatus(await req(`${loc}?digest=${sha512(blob)}`, { method: 'PUT' }), 201);
    await expectStatus(await req(`/v2/${name}/blobs/${sha512(blob)}`, { method: 'HEAD' }), 200);
  });

  it('unknown, cancelled and foreign sessions are BLOB_UPLOAD_UNKNOWN', async () => {
    const fake = `/v2/${name}/blobs/uploads/0f0e0d0c-0000-4000-8000-000000000000`;
    for (const method of ['GET', 'PATCH', 'PUT', 'DELETE']) {
      const res = await req(method === 'PUT' ? `${fake}?digest=${EMPTY_DIGEST}` : fake, { method, body: method === 'PATCH' ? 'x' : undefined });
      await expectError(res, 404, 'BLOB_UPLOAD_UNKNOWN');
    }
    await expectError(await req(`/v2/${name}/blobs/uploads/not..an..id`), 404, 'BLOB_UPLOAD_UNKNOWN');
    const loc = await startSession(name);
    const id = loc.split('/').pop();
    // The session belongs to its image.
    await expectError(await req(`/v2/reg/push/elsewhere/blobs/uploads/${id}`), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectStatus(await req(loc, { method: 'DELETE' }), 204);
    await expectError(await req(loc), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await req(loc, { method: 'PATCH', body: 'x' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    assert.equal(await s.services.blobs.uploads.size(id!), null, 'the bytes are gone too');
  });

  it('the upload limit covers a whole session: 413 SIZE_INVALID', async () => {
    const big = Buffer.alloc(UPLOAD_LIMIT + 1, 1);
    await refusedWithoutTrace(async () => {
      await expectError(await req(`/v2/${name}/blobs/uploads/?digest=${sha256(big)}`, { method: 'POST', body: big }), 413, 'SIZE_INVALID');
    });
    const loc = await startSession(name);
    await expectStatus(await req(loc, { method: 'PATCH', body: Buffer.alloc(UPLOAD_LIMIT - 10) }), 202);
    await expectError(await req(loc, { method: 'PATCH', body: Buffer.alloc(11), headers: { 'content-range': `${UPLOAD_LIMIT - 10}-${UPLOAD_LIMIT}` } }), 413, 'SIZE_INVALID');
    // Chunked transfer (no length announced): stopped when the count passes the limit, nothing of it kept.
    const stream = new ReadableStream({
      start(ctl) {
        for (let i = 0; i < 4; i++) ctl.enqueue(new Uint8Array(8));
        ctl.close();
      },
    });
    await expectError(await req(loc, { method: 'PATCH', body: stream, duplex: 'half' } as RequestInit), 413, 'SIZE_INVALID');
    const status = await req(loc);
    await expectStatus(status, 204);
    assert.equal(status.headers.get('range'), `0-${UPLOAD_LIMIT - 11}`);
  });

  it('cross-repository mount: 201 when the caller may read the source, else a 202 session', async () => {
    const blob = unique('mount', 800);
    const d = await pushBlob('reg/mount/src', blob);
    const ok = await req(`/v2/reg/mount/dst/blobs/uploads/?from=${encodeURIComponent('reg/mount/src')}&mount=${encodeURIComponent(d)}`, { method: 'POST' });
    await expectStatus(ok, 201);
    assert.equal(ok.headers.get('location'), `/v2/reg/mount/dst/blobs/${d}`);
    assert.equal(ok.headers.get('docker-content-digest'), d);
    await expectStatus(await req(`/v2/reg/mount/dst/blobs/${d}`, { method: 'HEAD' }), 200);

    // Across Granary repositories too, when the caller may read both (carol: write on reg, read on other).
    const secret = unique('secret', 500);
    await pushBlob('other/vault', secret, ADMIN);
    const viaCarol = await s.fetch(`/v2/reg/mount/carol/blobs/uploads/?from=other/vault&mount=${d}`, { method: 'POST', auth: CAROL });
    await expectStatus(viaCarol, 202); // the blob is not linked in other/vault
    const mounted = await s.fetch(`/v2/reg/mount/carol/blobs/uploads/?from=other/vault&mount=${sha256(secret)}`, { method: 'POST', auth: CAROL });
    await expectStatus(mounted, 201);

    // alice may not read `other`: she gets a session, and the blob stays invisible in her image.
    await refusedWithoutTrace(async () => {
      const refused = await req(`/v2/reg/mount/dst/blobs/uploads/?from=other/vault&mount=${sha256(secret)}`, { method: 'POST' });
      await expectStatus(refused, 202);
      assert.match(refused.headers.get('location') ?? '', /^\/v2\/reg\/mount\/dst\/blobs\/uploads\/[\w-]+$/);
      await expectError(await req(`/v2/reg/mount/dst/blobs/${sha256(secret)}`), 404, 'BLOB_UNKNOWN');
    });
    // Without `from`, with an unknown digest, a bad digest or a bad name: a session too.
    for (const q of [`mount=${d}`, `mount=${sha256('nope')}&from=reg/mount/src`, 'mount=junk&from=reg/mount/src', `mount=${d}&from=Bad/Name`]) {
      await expectStatus(await req(`/v2/reg/mount/other/blobs/uploads/?${q}`, { method: 'POST' }), 202);
    }
  });

  it('manifests: OCI image with layers, no layers, empty config (created on the fly), Docker v2s2 and lists', async () => {
    const img = await pushImage(name, 'oci', { layers: 3 });
    const res = await req(`/v2/${name}/manifests/${img.digest}`);
    assert.equal(await expectStatus(res, 200), img.manifest);

    const cfg = unique('nolayers');
    await pushBlob(name, cfg);
    const nolayers = imageManifest(cfg, []);
    const put = await putManifest(name, 'nolayers', nolayers);
    await expectStatus(put, 201);
    assert.equal(put.headers.get('location'), `/v2/${name}/manifests/${sha256(nolayers)}`);

    const artifact = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.example.thing',
      config: { mediaType: OCI_EMPTY, digest: EMPTY_DIGEST, size: 2 },
      layers: [{ mediaType: OCI_EMPTY, digest: EMPTY_DIGEST, size: 2 }],
    });
    await expectStatus(await putManifest('reg/push/artifact', 'v1', artifact), 201);
    const empty = await req(`/v2/reg/push/artifact/blobs/${EMPTY_DIGEST}`);
    assert.equal(await expectStatus(empty, 200), '{}');

    const dcfg = unique('dockercfg');
    const dlayer = unique('dockerlayer', 600);
    await pushBlob(name, dcfg);
    await pushBlob(name, dlayer);
    const docker = imageManifest(dcfg, [dlayer], {}, DOCKER_MANIFEST);
    await expectStatus(await putManifest(name, 'v2s2', docker, DOCKER_MANIFEST), 201);
    const dget = await req(`/v2/${name}/manifests/v2s2`, { headers: { accept: ALL_ACCEPT } });
    assert.equal(await expectStatus(dget, 200), docker);
    assert.equal(dget.headers.get('content-type'), DOCKER_MANIFEST);

    const list = JSON.stringify({
      schemaVersion: 2,
      mediaType: DOCKER_LIST,
      manifests: [{ mediaType: DOCKER_MANIFEST, digest: sha256(docker), size: Buffer.byteLength(docker), platform: { architecture: 'amd64', os: 'linux' } }],
    });
    await expectStatus(await putManifest(name, 'list', list, DOCKER_LIST), 201);
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        { mediaType: OCI_MANIFEST, digest: img.digest, size: Buffer.byteLength(img.manifest), platform: { architecture: 'amd64', os: 'linux' } },
        { mediaType: OCI_MANIFEST, digest: sha256(nolayers), size: Buffer.byteLength(nolayers), platform: { architecture: 'arm64', os: 'linux' } },
      ],
    });
    await expectStatus(await putManifest(name, 'multi', index, OCI_INDEX), 201);
    const iget = await req(`/v2/${name}/manifests/multi`);
    assert.equal(iget.headers.get('content-type'), OCI_INDEX);
    assert.equal(await expectStatus(iget, 200), index);
  });

  it('refused manifests store nothing: missing blobs (one error each), missing children, schema 1, malformed, wrong digest, bad reference', async () => {
    const cfg = unique('refused-cfg');
    await pushBlob(name, cfg);
    const l1 = unique('never-pushed-1', 100);
    const l2 = unique('never-pushed-2', 100);
    const missingBlobs = imageManifest(cfg, [l1, l2]);
    const childless = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: sha256(missingBlobs), size: 10 }] });
    const schema1 = JSON.stringify({ schemaVersion: 1, name: 'x', tag: 'y', architecture: 'amd64', fsLayers: [], history: [], signatures: [] });
    const mismatched = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
    const wrongSize = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: sha256(cfg), size: cfg.length + 1 },
      layers: [],
    });
    const valid = imageManifest(cfg, []);

    await refusedWithoutTrace(async () => {
      const body = await expectError(await putManifest(name, 'bad', missingBlobs), 404, 'MANIFEST_BLOB_UNKNOWN', 'MANIFEST_BLOB_UNKNOWN');
      assert.deepEqual(
        body.errors.map((e) => e.detail?.digest),
        [sha256(l1), sha256(l2)],
      );
      const child = await expectError(await putManifest(name, 'bad', childless, OCI_INDEX), 404, 'MANIFEST_BLOB_UNKNOWN');
      assert.equal(child.errors[0].detail?.digest, sha256(missingBlobs));
      const s1 = await expectError(await putManifest(name, 'bad', schema1, SCHEMA1), 400, 'MANIFEST_INVALID');
      assert.match(s1.errors[0].message, /schema 1/);
      await expectError(await putManifest(name, 'bad', schema1, 'application/json'), 400, 'MANIFEST_INVALID');
      await expectError(await putManifest(name, 'bad', '{"schemaVersion": 2, "config": ', OCI_MANIFEST), 400, 'MANIFEST_INVALID');
      await expectError(await putManifest(name, 'bad', mismatched, OCI_MANIFEST), 400, 'MANIFEST_INVALID');
      await expectError(await putManifest(name, 'bad', wrongSize), 400, 'MANIFEST_INVALID');
      const wrong = await expectError(await putManifest(name, sha256('not this'), valid), 400, 'DIGEST_INVALID');
      assert.equal(wrong.errors[0].detail?.digest, sha256('not this'));
      await expectError(await putManifest(name, 'sha256:totallywrong', valid), 400, 'MANIFEST_INVALID');
      await expectError(await putManifest(name, '-bad-tag', valid), 400, 'MANIFEST_INVALID');
      await expectError(await req(`/v2/${name}/manifests/bad`), 404, 'MANIFEST_UNKNOWN');
    });
    for (const m of [missingBlobs, childless, schema1, valid]) assert.equal(await s.services.blobs.stat(sha256(m)), null);
  });

  it('names with "..", upper case or empty segments are NAME_INVALID, and nothing is stored', async () => {
    const blob = unique('badname');
    await refusedWithoutTrace(async () => {
      for (const bad of ['reg/Upper/app', 'reg/a/../b', 'reg/./b', 'reg/a//b', 'reg/-x', 'reg/a%2F..%2Fb', 'reg/a/..']) {
        await expectError(await rawRequest('POST', `/v2/${bad}/blobs/uploads/?digest=${sha256(blob)}`, blob), 400, 'NAME_INVALID');
        await expectError(await rawRequest('GET', `/v2/${bad}/manifests/latest`), 400, 'NAME_INVALID');
      }
      // A Granary repository alone is no image name.
      await expectError(await req(`/v2/reg/manifests/latest`), 400, 'NAME_INVALID');
    });
    assert.equal(await s.services.blobs.stat(sha256(blob)), null);
  });

  it('auth: anonymous pushes get 401 + challenge with the scope; read-only users get 403 DENIED', async () => {
    const blob = unique('authz');
    await refusedWithoutTrace(async () => {
      const anon = await s.fetch(`/v2/${name}/blobs/uploads/`, { method: 'POST', auth: null });
      await expectError(anon, 401, 'UNAUTHORIZED');
      assert.equal(anon.headers.get('www-authenticate')?.endsWith(`scope="repository:${name}:pull,push"`), true);
      await expectError(await s.fetch(`/v2/${name}/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', body: blob, auth: BOB }), 403, 'DENIED');
      await expectError(await s.fetch(`/v2/${name}/manifests/x`, { method: 'PUT', body: '{}', auth: BOB }), 403, 'DENIED');
      await expectError(await s.fetch(`/v2/nosuchrepo/app/manifests/x`, { auth: BOB }), 404, 'NAME_UNKNOWN');
      await expectError(await s.fetch(`/v2/nosuchrepo/app/manifests/x`, { auth: null }), 401, 'UNAUTHORIZED');
      await expectError(await s.fetch(`/v2/files/app/manifests/x`, { auth: ALICE }), 404, 'NAME_UNKNOWN');
      await expectError(await s.fetch(`/v2/${name}/manifests/x`, { auth: basic('alice', 'wrong-password') }), 401, 'UNAUTHORIZED');
    });
  });
});

// -------------------------------------------------------------------------------------------------------------
describe('content discovery', () => {
  const name = 'reg/disc/app';
  const TAGS = ['v1.10', 'latest', 'B', 'a', 'A', 'v1.2', 'b', 'v1.0', '_x', 'Z9'];

  before(async () => {
    const img = await pushImage(name, TAGS[0]);
    for (const t of TAGS.slice(1)) await expectStatus(await putManifest(name, t, img.manifest), 201);
  });

  it('lists tags in lexical (case-insensitive) order, and pages with n, last and Link', async () => {
    const sorted = [...TAGS].sort(compareTags);
    assert.deepEqual(await tagsOf(name), sorted);
    const seen: string[] = [];
    let next: string | null = `/v2/${name}/tags/list?n=3`;
    while (next) {
      const res = await req(next);
      const body = JSON.parse(await expectStatus(res, 200)) as { name: string; tags: string[] };
      assert.equal(body.name, name);
      assert.ok(body.tags.length <= 3);
      seen.push(...body.tags);
      const link = res.headers.get('link');
      next = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1] : null;
      if (next) assert.equal(body.tags.length, 3, 'a page with a Link is full');
    }
    assert.deepEqual(seen, sorted);
    const zero = await req(`/v2/${name}/tags/list?n=0`);
    assert.deepEqual(JSON.parse(await expectStatus(zero, 200)).tags, []);
    assert.equal(zero.headers.get('link'), null);
    const after = await req(`/v2/${name}/tags/list?last=${sorted[4]}`);
    assert.deepEqual(JSON.parse(await expectStatus(after, 200)).tags, sorted.slice(5));
    const two = await req(`/v2/${name}/tags/list?n=2&last=${sorted[0]}`);
    assert.deepEqual(JSON.parse(await expectStatus(two, 200)).tags, sorted.slice(1, 3));
    await expectError(await req(`/v2/${name}/tags/list?n=-1`), 400, 'PAGINATION_NUMBER_INVALID');
  });

  it('an unknown name is NAME_UNKNOWN', async () => {
    await expectError(await req('/v2/reg/disc/nothing/tags/list'), 404, 'NAME_UNKNOWN');
    await expectError(await req('/v2/reg/disc/tags/list'), 404, 'NAME_UNKNOWN'); // a prefix of an image is no image
  });

  it('referrers: OCI-Subject on push, listing with annotations, artifactType filter, unknown subjects', async () => {
    const subject = await pushImage('reg/disc/refs', 'subject');
    const subjectDesc = { mediaType: OCI_MANIFEST, digest: subject.digest, size: Buffer.byteLength(subject.manifest) };
    const layer = unique('sig', 200);
    await pushBlob('reg/disc/refs', layer);
    const cfgA = unique('cfgA');
    await pushBlob('reg/disc/refs', cfgA);
    // (1) artifactType from config.mediaType
    const refA = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.example.sbom', digest: sha256(cfgA), size: cfgA.length },
      layers: [{ mediaType: OCI_LAYER, digest: sha256(layer), size: layer.length }],
      subject: subjectDesc,
      annotations: { 'org.example.n': 'a' },
    });
    // (2) explicit artifactType, empty config
    const refB = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.example.signature',
      config: { mediaType: OCI_EMPTY, digest: EMPTY_DIGEST, size: 2 },
      layers: [{ mediaType: OCI_LAYER, digest: sha256(layer), size: layer.length }],
      subject: subjectDesc,
      annotations: { 'org.example.n': 'b' },
    });
    // (3) an index referrer
    const refC = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      artifactType: 'application/vnd.example.signature',
      manifests: [],
      subject: subjectDesc,
      annotations: { 'org.example.n': 'c' },
    });
    for (const [body, type] of [[refA, OCI_MANIFEST], [refB, OCI_MANIFEST], [refC, OCI_INDEX]] as const) {
      const put = await putManifest('reg/disc/refs', sha256(body), body, type);
      await expectStatus(put, 201);
      assert.equal(put.headers.get('oci-subject'), subject.digest);
    }
    const res = await req(`/v2/reg/disc/refs/referrers/${subject.digest}`);
    assert.equal(res.headers.get('content-type'), OCI_INDEX);
    assert.equal(res.headers.get('oci-filters-applied'), null);
    const index = JSON.parse(await expectStatus(res, 200)) as { schemaVersion: number; mediaType: string; manifests: { digest: string; artifactType?: string; annotations?: Record<string, string>; size: number; mediaType: string }[] };
    assert.equal(index.schemaVersion, 2);
    assert.equal(index.mediaType, OCI_INDEX);
    const byN = Object.fromEntries(index.manifests.map((m) => [m.annotations?.['org.example.n'], m]));
    assert.deepEqual(Object.keys(byN).sort(), ['a', 'b', 'c']);
    assert.deepEqual(byN.a, { mediaType: OCI_MANIFEST, digest: sha256(refA), size: Buffer.byteLength(refA), artifactType: 'application/vnd.example.sbom', annotations: { 'org.example.n': 'a' } });
    assert.equal(byN.b.artifactType, 'application/vnd.example.signature');
    assert.equal(byN.c.mediaType, OCI_INDEX);

    const filtered = await req(`/v2/reg/disc/refs/referrers/${subject.digest}?artifactType=${encodeURIComponent('application/vnd.example.signature')}`);
    assert.equal(filtered.headers.get('oci-filters-applied'), 'artifactType');
    const f = JSON.parse(await expectStatus(filtered, 200)) as { manifests: { digest: string }[] };
    assert.deepEqual(f.manifests.map((m) => m.digest).sort(), [sha256(refB), sha256(refC)].sort());

    // A subject that does not exist (yet): still 200; the referrer was accepted and is listed.
    const ghost = sha256(unique('ghost'));
    const refD = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [], subject: { mediaType: OCI_MANIFEST, digest: ghost, size: 7 } });
    await expectStatus(await putManifest('reg/disc/refs', 'refd', refD, OCI_INDEX), 201);
    const g = JSON.parse(await expectStatus(await req(`/v2/reg/disc/refs/referrers/${ghost}`), 200)) as { manifests: { digest: string }[] };
    assert.deepEqual(g.manifests.map((m) => m.digest), [sha256(refD)]);
    const none = await req(`/v2/reg/disc/refs/referrers/${sha256(unique('none'))}`);
    assert.equal(none.headers.get('content-type'), OCI_INDEX);
    assert.deepEqual(JSON.parse(await expectStatus(none, 200)).manifests, []);
    await expectError(await req('/v2/reg/disc/refs/referrers/sha256:bad'), 400, 'DIGEST_INVALID');

    // Deleting a referrer takes it out of the list.
    await expectStatus(await req(`/v2/reg/disc/refs/manifests/${sha256(refA)}`, { method: 'DELETE' }), 202);
    const after = JSON.parse(await expectStatus(await req(`/v2/reg/disc/refs/referrers/${subject.digest}`), 200)) as { manifests: { digest: string }[] };
    assert.deepEqual(after.manifests.map((m) => m.digest).sort(), [sha256(refB), sha256(refC)].sort());
  });

  it('the catalog shows only what the caller may read, with pagination', async () => {
    await pushImage('other/cat/hidden', 'v1', { auth: ADMIN });
    const names = async (auth: string | null, q = ''): Promise<{ names: string[]; link: string | null }> => {
      const res = await s.fetch(`/v2/_catalog${q}`, { auth });
      const body = JSON.parse(await expectStatus(res, 200)) as { repositories: string[] };
      return { names: body.repositories, link: res.headers.get('link') };
    };
    const admin = (await names(ADMIN)).names;
    assert.ok(admin.includes('other/cat/hidden') && admin.includes(name) && admin.includes('pub/app'), admin.join(' '));
    assert.deepEqual([...admin].sort(), admin, 'sorted');
    const bob = (await names(BOB)).names;
    assert.ok(bob.includes(name) && bob.every((n) => n.startsWith('reg/') || n.startsWith('pub/')), bob.join(' ')); // pub: anonymousRead
    const carol = (await names(CAROL)).names;
    assert.ok(carol.includes('other/cat/hidden'));
    const anon = (await names(null)).names;
    assert.deepEqual(anon, ['pub/app']);
    const page = await names(BOB, '?n=2');
    assert.deepEqual(page.names, bob.slice(0, 2));
    assert.equal(page.link, `</v2/_catalog?n=2&last=${encodeURIComponent(bob[1])}>; rel="next"`);
    const rest = await names(BOB, `?n=1000&last=${encodeURIComponent(bob[1])}`);
    assert.deepEqual(rest.names, bob.slice(2));
  });
});

// -------------------------------------------------------------------------------------------------------------
describe('content management', () => {
  const name = 'reg/mgmt/app';

  it('DELETE a tag (202) keeps the manifest; DELETE a manifest (202) removes it and every tag on it', async () => {
    const img = await pushImage(name, 't1');
    await expectStatus(await putManifest(name, 't2', img.manifest), 201);
    await expectStatus(await putManifest(name, 't3', img.manifest), 201);
    await expectStatus(await req(`/v2/${name}/manifests/t1`, { method: 'DELETE' }), 202);
    assert.deepEqual(await tagsOf(name), ['t2', 't3']);
    await expectStatus(await req(`/v2/${name}/manifests/${img.digest}`), 200);
    await expectError(await req(`/v2/${name}/manifests/t1`, { method: 'DELETE' }), 404, 'MANIFEST_UNKNOWN');

    await expectStatus(await req(`/v2/${name}/manifests/${img.digest}`, { method: 'DELETE' }), 202);
    await expectError(await req(`/v2/${name}/manifests/${img.digest}`), 404, 'MANIFEST_UNKNOWN');
    await expectError(await req(`/v2/${name}/manifests/t2`), 404, 'MANIFEST_UNKNOWN');
    assert.deepEqual(await tagsOf(name), []);
    await expectError(await req(`/v2/${name}/manifests/${img.digest}`, { method: 'DELETE' }), 404, 'MANIFEST_UNKNOWN');

    // Blobs: unlinked from this image (202, then 404), the bytes stay for GC.
    const d = sha256(img.layers[0]);
    await expectStatus(await req(`/v2/${name}/blobs/${d}`, { method: 'DELETE' }), 202);
    await expectError(await req(`/v2/${name}/blobs/${d}`), 404, 'BLOB_UNKNOWN');
    await expectError(await req(`/v2/${name}/blobs/${d}`, { method: 'DELETE' }), 404, 'BLOB_UNKNOWN');
    assert.ok(await s.services.blobs.stat(d));
  });

  it('every change appended its event', async () => {
    const n = 'reg/mgmt/events';
    const from = await lastEventSeq(s.services.meta.db);
    const img = await pushImage(n, 'e1');
    await expectStatus(await putManifest(n, 'e2', img.manifest), 201);
    await expectStatus(await req(`/v2/${n}/manifests/e2`, { method: 'DELETE' }), 202);
    await expectStatus(await req(`/v2/${n}/manifests/${img.digest}`, { method: 'DELETE' }), 202);
    await expectStatus(await req(`/v2/${n}/blobs/${sha256(img.config)}`, { method: 'DELETE' }), 202);
    const res = await s.api<{ events: { kind: string; path: string; digest: string; repo: string; actor: string }[] }>('GET', `/events?since=${from}&repository=reg`);
    assert.equal(res.status, 200);
    const seen = res.body.events.map((e) => `${e.kind} ${e.path}`);
    const cfg = sha256(img.config);
    const layer = sha256(img.layers[0]);
    const image = 'mgmt/events'; // paths are inside the Granary repository `reg`
    assert.deepEqual(seen, [
      `asset.put ${image}/_blobs/${cfg}`,
      `asset.put ${image}/_blobs/${layer}`,
      `asset.put ${image}/_manifests/${img.digest}`,
      `tag.set ${image}:e1`,
      `tag.set ${image}:e2`,
      `tag.deleted ${image}:e2`,
      `tag.deleted ${image}:e1`,
      `asset.deleted ${image}/_manifests/${img.digest}`,
      `asset.deleted ${image}/_blobs/${cfg}`,
    ]);
    assert.ok(res.body.events.every((e) => e.repo === 'reg' && e.actor === 'alice'));
    // A re-push of the same content changes nothing and appends nothing.
    await refusedWithoutTrace(async () => {
      await pushBlob(n, img.layers[0]);
    });
    const events = await listEvents(s.services.meta.db, { since: from, repo: 'reg', limit: 1000 });
    assert.equal(events.length, seen.length);
  });

  it('deletes need the delete role: write-only and read-only users get 403 DENIED', async () => {
    const img = await pushImage(name, 'keep');
    await refusedWithoutTrace(async () => {
      for (const auth of [CAROL, BOB]) {
        await expectError(await s.fetch(`/v2/${name}/manifests/keep`, { method: 'DELETE', auth }), 403, 'DENIED');
        await expectError(await s.fetch(`/v2/${name}/manifests/${img.digest}`, { method: 'DELETE', auth }), 403, 'DENIED');
        await expectError(await s.fetch(`/v2/${name}/blobs/${sha256(img.config)}`, { method: 'DELETE', auth }), 403, 'DENIED');
      }
    });
    // …but a pusher may cancel her own upload.
    const loc = await startSession(name, CAROL);
    await expectStatus(await s.fetch(loc, { method: 'DELETE', auth: CAROL }), 204);
    await expectStatus(await req(`/v2/${name}/manifests/keep`), 200);
  });

  it('allowDelete: false refuses every delete with 405 UNSUPPORTED', async () => {
    const config = unique('locked-cfg');
    await pushBlob('locked/app', config);
    const m = imageManifest(config, []);
    await expectStatus(await putManifest('locked/app', 'v1', m), 201);
    await refusedWithoutTrace(async () => {
      await expectError(await req('/v2/locked/app/manifests/v1', { method: 'DELETE' }), 405, 'UNSUPPORTED');
      await expectError(await req(`/v2/locked/app/manifests/${sha256(m)}`, { method: 'DELETE' }), 405, 'UNSUPPORTED');
      await expectError(await req(`/v2/locked/app/blobs/${sha256(config)}`, { method: 'DELETE' }), 405, 'UNSUPPORTED');
    });
    await expectStatus(await req('/v2/locked/app/manifests/v1'), 200);
  });

  it('immutableTags: the same digest again is fine, moving the tag is DENIED and changes nothing', async () => {
    const c1 = unique('imm1');
    const c2 = unique('imm2');
    await pushBlob('locked/imm', c1);
    await pushBlob('locked/imm', c2);
    const m1 = imageManifest(c1, []);
    const m2 = imageManifest(c2, []);
    await expectStatus(await putManifest('locked/imm', 'stable', m1), 201);
    await expectStatus(await putManifest('locked/imm', 'stable', m1), 201);
    await refusedWithoutTrace(async () => {
      const moved = await expectError(await putManifest('locked/imm', 'stable', m2), 403, 'DENIED');
      assert.match(moved.errors[0].message, /immutable/);
      assert.equal(moved.errors[0].detail?.digest, sha256(m1));
    });
    assert.equal(await s.services.blobs.stat(sha256(m2)), null);
    const get = await req('/v2/locked/imm/manifests/stable');
    assert.equal(get.headers.get('docker-content-digest'), sha256(m1));
    await get.arrayBuffer();
    await expectStatus(await putManifest('locked/imm', 'next', m2), 201); // a new tag is fine
  });

  it('maxManifestBytes: a bigger manifest is 413 and nothing is stored', async () => {
    const config = unique('big-cfg');
    await pushBlob('locked/big', config);
    const big = imageManifest(config, [], { annotations: { pad: 'x'.repeat(3000) } });
    await refusedWithoutTrace(async () => {
      await expectError(await putManifest('locked/big', 'v1', big), 413, 'MANIFEST_INVALID');
      // Chunked transfer: no Content-Length to check up front; the cap applies while reading.
      const stream = new ReadableStream({
        start(ctl) {
          ctl.enqueue(new TextEncoder().encode(big));
          ctl.close();
        },
      });
      const res = await req('/v2/locked/big/manifests/v1', { method: 'PUT', body: stream, headers: { 'content-type': OCI_MANIFEST }, duplex: 'half' } as RequestInit);
      await expectError(res, 413, 'MANIFEST_INVALID');
    });
    assert.equal(await s.services.blobs.stat(sha256(big)), null);
  });
});

// -------------------------------------------------------------------------------------------------------------
describe('default repository', () => {
  let d: TestServer;
  before(async () => {
    d = await startServer({ config: { oci: { defaultRepository: 'hub' } } });
    await d.services.repos.create({ name: 'hub', format: 'oci' }, 'test');
    await d.services.repos.create({ name: 'team', format: 'oci' }, 'test');
    await d.services.repos.create({ name: 'files', format: 'generic' }, 'test');
  });
  after(async () => {
    await d?.close();
  });

  it('bare names live in the default repository; a first segment naming an OCI repository picks it', async () => {
    const push = async (fullName: string) => {
      const blob = unique(fullName);
      const res = await d.fetch(`/v2/${fullName}/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', body: blob });
      await expectStatus(res, 201);
      assert.equal(res.headers.get('location'), `/v2/${fullName}/blobs/${sha256(blob)}`, 'Location keeps the name the client used');
      return sha256(blob);
    };
    const where = async (digest: string) => {
      const res = await d.api<{ events: { repo: string; path: string }[] }>('GET', '/events?since=0&limit=1000');
      const e = res.body.events.find((x) => x.path?.endsWith(digest));
      return e && `${e.repo}:${e.path.slice(0, e.path.indexOf('/_blobs/'))}`;
    };
    assert.equal(await where(await push('alpine')), 'hub:alpine');
    assert.equal(await where(await push('library/alpine')), 'hub:library/alpine');
    assert.equal(await where(await push('team/app')), 'team:app');
    assert.equal(await where(await push('files/app')), 'hub:files/app'); // not an OCI repository
    assert.equal(await where(await push('hub/x')), 'hub:x');
    assert.equal(await where(await push('team')), 'hub:team'); // nothing after the repository name
    const catalog = JSON.parse(await expectStatus(await d.fetch('/v2/_catalog'), 200));
    assert.deepEqual(catalog, { repositories: [] }, 'no tags yet');
  });
});
