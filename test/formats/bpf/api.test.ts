/**
 * The eBPF-registry compatible API at /bpf/<repo>/ over a real server, with eBPF objects compiled during the run by
 * `clang -target bpf -g` (test/introspect/fixtures): JSON and streamed raw uploads, extracted metadata, search,
 * ranged downloads, host associations, refusals (non-BPF, too large, anonymous) and delete.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../../helpers/server.ts';
import { TOOLCHAINS, build, missing } from '../../introspect/fixtures/build.ts';

const skip = missing(TOOLCHAINS.bpf) ?? false;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const probe = (): Buffer => readFileSync(build(TOOLCHAINS.bpf, { sources: ['probe.bpf.c'], flags: ['-g', '-c'], out: 'probe.bpf.o' }));
const legacy = (): Buffer => readFileSync(build(TOOLCHAINS.bpf, { sources: ['legacy.bpf.c'], flags: ['-c'], out: 'legacy.bpf.o' }));

// Field-by-field assertions on the registry's JSON read better without casts.
type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('eBPF registry API', { skip }, () => {
  let srv: TestServer;
  let probeObj: Buffer;
  let legacyObj: Buffer;
  const call = async (method: string, path: string, body?: unknown, auth?: string | null) => {
    const init: RequestInit & { auth?: string | null } = { method, auth };
    if (body !== undefined) Object.assign(init, { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    const r = await srv.fetch(path, init);
    const text = await r.text();
    return { status: r.status, body: (text ? JSON.parse(text) : null) as Json, type: r.headers.get('content-type') };
  };
  const upload = (repo: string, obj: Buffer, fields: Record<string, unknown>, auth?: string | null) =>
    call('POST', `/bpf/${repo}/artifacts`, { data: obj.toString('base64'), ...fields }, auth);

  before(async () => {
    srv = await startServer();
    probeObj = probe();
    legacyObj = legacy();
    assert.equal((await srv.api('POST', '/repositories', { name: 'ebpf', format: 'generic' })).status, 201);
    assert.equal((await srv.api('POST', '/repositories', { name: 'tiny', format: 'generic', options: { maxUploadBytes: 1024 } })).status, 201);
  });
  after(async () => {
    await srv?.close();
  });

  it('answers /healthz', async () => {
    const r = await call('GET', '/bpf/ebpf/healthz');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { status: 'ok' });
    assert.equal((await call('GET', '/bpf/nope/healthz')).status, 404);
  });

  let probeId: string;
  it('takes a JSON upload and records the given and extracted metadata', async () => {
    const r = await upload('ebpf', probeObj, {
      name: 'opensnoop',
      version: '1.2.0',
      description: 'traces open()',
      type: 'kprobe',
      architecture: 'x86_64',
      kernel_version: '5.15',
      metadata: { team: 'sre', build: 42 },
      tags: ['tracing', 'fs'],
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    probeId = r.body.id;
    assert.equal(probeId, sha(probeObj));
    assert.equal(r.body.digest, `sha256:${probeId}`);
    assert.equal(r.body.size, probeObj.length);
    const got = await call('GET', `/bpf/ebpf/artifacts/${probeId}`);
    assert.equal(got.status, 200);
    const a = got.body;
    assert.equal(a.name, 'opensnoop');
    assert.equal(a.version, '1.2.0');
    assert.equal(a.description, 'traces open()');
    assert.equal(a.type, 'kprobe');
    assert.equal(a.architecture, 'x86_64');
    assert.equal(a.kernel_version, '5.15');
    assert.deepEqual(a.tags, ['tracing', 'fs']);
    assert.deepEqual(a.metadata, { team: 'sre', build: '42' }, 'labels are strings');
    assert.equal(a.file_type, 'ebpf');
    assert.equal(a.license, 'Dual BSD/GPL');
    assert.equal(a.btf, true);
    assert.equal(a.object_kernel_version, '5.15.0');
    assert.deepEqual(
      a.programs.map((p: Json) => [p.name, p.type]),
      [
        ['trace_open', 'kprobe'],
        ['trace_open_ret', 'kprobe'],
        ['trace_exec', 'tracepoint'],
        ['xdp_pass', 'xdp'],
        ['on_connect', 'tracing'],
      ],
    );
    assert.deepEqual(a.maps, [
      { name: 'counts', type: 'hash' },
      { name: 'events', type: 'ringbuf' },
      { name: 'scratch', type: 'percpu_array' },
    ]);

    const again = await upload('ebpf', probeObj, { name: 'opensnoop', version: '1.2.0' });
    assert.equal(again.status, 200);
    assert.equal(again.body.id, probeId);
    // A generic asset like any other: the management API sees it with its typed metadata.
    const listed = await srv.api<Json>('GET', '/repositories/ebpf/assets');
    assert.equal(listed.status, 200);
    assert.ok(JSON.stringify(listed.body).includes(`bpf/opensnoop/1.2.0/${probeId}`));
  });

  let legacyId: string;
  it('takes a streamed raw PUT and inspects the stored blob', async () => {
    const r = await srv.fetch('/bpf/ebpf/artifacts/raw?name=legacy&version=0.1.0&type=socket&architecture=arm64&tags=net,legacy', {
      method: 'PUT',
      body: new Uint8Array(legacyObj),
      headers: { 'content-type': 'application/octet-stream' },
    });
    const body = (await r.json()) as Json;
    assert.equal(r.status, 201, JSON.stringify(body));
    legacyId = body.id;
    assert.equal(legacyId, sha(legacyObj));
    assert.equal(body.type, 'socket');
    assert.deepEqual(body.tags, ['net', 'legacy']);
    assert.ok(body.programs.length > 0);
    assert.ok(body.maps.length > 0);
    assert.equal(typeof body.license, 'string');
    const again = await srv.fetch('/bpf/ebpf/artifacts/raw?name=legacy&version=0.1.0', { method: 'PUT', body: new Uint8Array(legacyObj), headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(again.status, 200);
    assert.equal(((await again.json()) as Json).id, legacyId);
  });

  it('searches by name, type, architecture and tag, newest first, paginated', async () => {
    const all = await call('GET', '/bpf/ebpf/artifacts');
    assert.equal(all.status, 200);
    assert.deepEqual(all.body.artifacts.map((a: Json) => a.id), [legacyId, probeId]);
    assert.equal(all.body.total, 2);
    const ids = async (q: string) => (await call('GET', `/bpf/ebpf/artifacts?${q}`)).body.artifacts.map((a: Json) => a.id);
    assert.deepEqual(await ids('name=opensnoop'), [probeId]);
    assert.deepEqual(await ids('type=socket'), [legacyId]);
    assert.deepEqual(await ids('tag=tracing'), [probeId]);
    assert.deepEqual(await ids('tag=net&architecture=arm64'), [legacyId]);
    assert.deepEqual(await ids('kernel_version=5.15'), [probeId]);
    assert.deepEqual(await ids('name=nothing'), []);
    assert.deepEqual(await ids('limit=1'), [legacyId]);
    assert.deepEqual(await ids('limit=1&offset=1'), [probeId]);
    assert.equal((await call('GET', '/bpf/ebpf/artifacts?limit=0')).status, 400);
  });

  it('serves the binary byte-identical, with ranges and ETag', async () => {
    const r = await srv.fetch(`/bpf/ebpf/artifacts/${probeId}/binary`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/octet-stream');
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), probeObj);
    const etag = r.headers.get('etag');
    assert.ok(etag);
    const part = await srv.fetch(`/bpf/ebpf/artifacts/${probeId}/binary`, { headers: { range: 'bytes=0-15' } });
    assert.equal(part.status, 206);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), probeObj.subarray(0, 16));
    const cached = await srv.fetch(`/bpf/ebpf/artifacts/${probeId}/binary`, { headers: { 'if-none-match': etag } });
    assert.equal(cached.status, 304);
    for (const id of ['0'.repeat(64), 'nope']) {
      const miss = await call('GET', `/bpf/ebpf/artifacts/${id}/binary`);
      assert.equal(miss.status, 404);
      assert.deepEqual(miss.body, { error: 'artifact not found' });
    }
  });

  it('associates artifacts with hosts, lists and removes them', async () => {
    assert.equal((await call('PUT', `/bpf/ebpf/artifacts/${probeId}/hosts/node-1`)).status, 201);
    assert.equal((await call('PUT', `/bpf/ebpf/artifacts/${probeId}/hosts/node-1`)).status, 200);
    assert.equal((await call('PUT', `/bpf/ebpf/artifacts/${legacyId}/hosts/node-1`)).status, 201);
    assert.equal((await call('PUT', `/bpf/ebpf/artifacts/${legacyId}/hosts/node-2`)).status, 201);
    assert.equal((await call('PUT', `/bpf/ebpf/artifacts/${'0'.repeat(64)}/hosts/node-1`)).status, 404);
    assert.equal((await call('PUT', `/bpf/ebpf/artifacts/${probeId}/hosts/${encodeURIComponent('bad host')}`)).status, 400);
    const forHost = async (h: string) => (await call('GET', `/bpf/ebpf/artifacts/for-host/${h}`)).body.artifacts.map((a: Json) => a.id).sort();
    assert.deepEqual(await forHost('node-1'), [probeId, legacyId].sort());
    assert.deepEqual(await forHost('node-2'), [legacyId]);
    assert.deepEqual(await forHost('node-3'), []);
    assert.equal((await call('DELETE', `/bpf/ebpf/artifacts/${probeId}/hosts/node-1`)).status, 204);
    assert.equal((await call('DELETE', `/bpf/ebpf/artifacts/${probeId}/hosts/node-1`)).status, 404);
    assert.deepEqual(await forHost('node-1'), [legacyId]);
  });

  it('refuses non-BPF objects with 400 and stores nothing', async () => {
    const before = (await call('GET', '/bpf/ebpf/artifacts')).body.total;
    const text = Buffer.from('#!/bin/sh\necho not an eBPF object\n');
    const r = await upload('ebpf', text, { name: 'script', version: '1.0.0' });
    assert.equal(r.status, 400);
    assert.match(r.body.error, /not an eBPF object/);
    const raw = await srv.fetch('/bpf/ebpf/artifacts/raw?name=script&version=1.0.0', { method: 'PUT', body: new Uint8Array(text), headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(raw.status, 400);
    assert.match(((await raw.json()) as Json).error, /not an eBPF object/);
    assert.equal((await upload('ebpf', probeObj, { name: 'x', version: '1', data: 'not base64!' })).status, 400);
    assert.equal((await upload('ebpf', probeObj, { name: '../x', version: '1' })).status, 400);
    assert.equal((await call('GET', '/bpf/ebpf/artifacts')).body.total, before);
    assert.equal((await call('GET', `/bpf/ebpf/artifacts/${sha(text)}`)).status, 404);
  });

  it('refuses objects above the repository cap with 413', async () => {
    assert.ok(probeObj.length > 1024);
    const r = await upload('tiny', probeObj, { name: 'big', version: '1' });
    assert.equal(r.status, 413);
    assert.match(r.body.error, /larger than 1024 bytes/);
    const raw = await srv.fetch('/bpf/tiny/artifacts/raw?name=big&version=1', { method: 'PUT', body: new Uint8Array(probeObj), headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(raw.status, 413);
    assert.equal((await call('GET', '/bpf/tiny/artifacts')).body.total, 0);
  });

  it('requires authentication', async () => {
    for (const [method, path] of [
      ['GET', '/bpf/ebpf/healthz'],
      ['GET', `/bpf/ebpf/artifacts/${probeId}`],
      ['GET', '/bpf/ebpf/artifacts'],
      ['PUT', `/bpf/ebpf/artifacts/${probeId}/hosts/node-9`],
      ['DELETE', `/bpf/ebpf/artifacts/${probeId}`],
    ] as const) {
      const r = await call(method, path, undefined, null);
      assert.equal(r.status, 401, `${method} ${path}`);
      assert.ok(typeof r.body.error === 'string');
    }
    assert.equal((await upload('ebpf', probeObj, { name: 'anon', version: '1' }, null)).status, 401);
  });

  it('deletes: 204, then 404 and no host association left', async () => {
    assert.equal((await call('DELETE', `/bpf/ebpf/artifacts/${legacyId}`)).status, 204);
    assert.equal((await call('GET', `/bpf/ebpf/artifacts/${legacyId}`)).status, 404);
    assert.equal((await call('GET', `/bpf/ebpf/artifacts/${legacyId}/binary`)).status, 404);
    assert.equal((await call('DELETE', `/bpf/ebpf/artifacts/${legacyId}`)).status, 404);
    assert.deepEqual((await call('GET', '/bpf/ebpf/artifacts/for-host/node-2')).body.artifacts, []);
    assert.deepEqual((await call('GET', '/bpf/ebpf/artifacts')).body.artifacts.map((a: Json) => a.id), [probeId]);
  });
});
