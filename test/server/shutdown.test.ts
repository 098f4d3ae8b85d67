/**
 * Shutdown: a request that reaches a draining server — pipelined behind an in-flight upload on a connection the
 * close could not reap — is answered 503 in the envelope of its format (with Retry-After and Connection: close), not
 * with Fastify's own body, and is never executed; the in-flight upload still completes. And a keep-alive connection
 * busy when the shutdown began is closed once its response is out, instead of holding the shutdown for the
 * keep-alive timeout.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { it } from 'node:test';
import { ADMIN_TOKEN, startServer } from '../helpers/server.ts';

it('answers requests that arrive while draining with 503 in the format envelope', async () => {
  const s = await startServer();
  let closed: Promise<void> | undefined;
  try {
    assert.equal((await s.api('POST', '/repositories', { name: 'files', format: 'generic' })).status, 201);
    const port = Number(new URL(s.url).port);
    const sock = connect(port, '127.0.0.1');
    let raw = '';
    sock.setEncoding('latin1').on('data', (d: string) => (raw += d));
    const ended = new Promise((r) => sock.on('close', r));
    const auth = `authorization: Bearer ${ADMIN_TOKEN}\r\n`;
    // An upload in flight: headers and half of the body.
    sock.write(`PUT /generic/files/slow.bin HTTP/1.1\r\nhost: x\r\n${auth}content-length: 10\r\n\r\n12345`);
    await new Promise((r) => setTimeout(r, 200));
    closed = s.app.close();
    await new Promise((r) => setTimeout(r, 100));
    // The rest of the upload, then two requests pipelined behind it: an OCI one and a generic one.
    sock.write(`67890GET /v2/files/x/tags/list HTTP/1.1\r\nhost: x\r\n${auth}\r\n`);
    sock.write(`PUT /generic/files/late.bin HTTP/1.1\r\nhost: x\r\n${auth}content-length: 4\r\n\r\nlate`);
    await ended;
    const responses = raw.split(/(?=HTTP\/1\.1 )/);
    assert.match(responses[0]!, /^HTTP\/1\.1 201/, 'the in-flight upload completes');
    assert.match(responses[1]!, /^HTTP\/1\.1 503/);
    assert.match(responses[1]!, /retry-after: 1/i);
    assert.match(responses[1]!, /connection: close/i);
    const body = JSON.parse(responses[1]!.slice(responses[1]!.indexOf('\r\n\r\n') + 4)) as { errors?: { code: string; message: string }[] };
    assert.match(body.errors?.[0]?.message ?? '', /shutting down/, 'OCI error JSON');
    assert.equal(responses.length, 2, 'Connection: close: nothing after the 503 is read or executed');
  } finally {
    await (closed ?? s.app.close());
    await s.close().catch(() => {});
  }
});

it('closes a keep-alive connection that was busy when the shutdown began as soon as its response is sent', async () => {
  const s = await startServer();
  try {
    assert.equal((await s.api('POST', '/repositories', { name: 'files', format: 'generic' })).status, 201);
    const sock = connect(Number(new URL(s.url).port), '127.0.0.1');
    let raw = '';
    sock.setEncoding('latin1').on('data', (d: string) => (raw += d));
    const serverClosedIt = new Promise((r) => sock.on('close', r));
    sock.write(`PUT /generic/files/slow.bin HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${ADMIN_TOKEN}\r\ncontent-length: 10\r\n\r\n12345`);
    await new Promise((r) => setTimeout(r, 200));
    const closed = s.app.close();
    sock.write('67890'); // the client keeps its side open (keep-alive); only the server can end this
    // Without reaping, the connection idles for the keep-alive timeout (72 s) and close() waits for it.
    const outcome = await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('still open after 20 s'), 20_000).unref())]);
    assert.equal(outcome, 'closed');
    await serverClosedIt;
    assert.match(raw, /^HTTP\/1\.1 201/);
  } finally {
    await s.close().catch(() => {});
  }
});
