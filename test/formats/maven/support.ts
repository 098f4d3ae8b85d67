/** Helpers for the Maven protocol tests: repositories, deploys as Maven makes them, XML reading. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { XMLParser } from 'fast-xml-parser';
import type { TestServer } from '../../helpers/server.ts';

export const hash = (algo: string, data: Buffer | string) => createHash(algo).update(data).digest('hex');

export async function createRepo(s: TestServer, body: Record<string, unknown>): Promise<void> {
  const r = await s.api('POST', '/repositories', { format: 'maven', ...body });
  assert.equal(r.status, 201, JSON.stringify(r.body));
}

/** PUT of a file plus its .sha1 and .md5, in the order Maven 3.8 sends them; returns the file's status. */
export async function deployFile(s: TestServer, repo: string, path: string, data: Buffer | string, auth?: string | null): Promise<number> {
  const res = await s.fetch(`/maven/${repo}/${path}`, { method: 'PUT', body: data, auth });
  await res.arrayBuffer();
  if (res.status >= 300) return res.status;
  for (const algo of ['sha1', 'md5']) {
    const c = await s.fetch(`/maven/${repo}/${path}.${algo}`, { method: 'PUT', body: hash(algo, data), auth });
    await c.arrayBuffer();
    assert.equal(c.status, 201, `${path}.${algo}`);
  }
  return res.status;
}

export async function getText(s: TestServer, path: string): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await s.fetch(path);
  return { status: res.status, body: await res.text(), headers: res.headers };
}

const parser = new XMLParser({
  parseTagValue: false,
  isArray: (_n, jpath) => ['metadata.versioning.versions.version', 'metadata.versioning.snapshotVersions.snapshotVersion', 'metadata.plugins.plugin'].includes(String(jpath)),
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function getMetadata(s: TestServer, path: string): Promise<any> {
  const r = await getText(s, path);
  assert.equal(r.status, 200, `${path}: ${r.body}`);
  // The checksum files served for it describe exactly these bytes.
  for (const algo of ['sha1', 'md5', 'sha256', 'sha512']) {
    const c = await getText(s, `${path}.${algo}`);
    assert.equal(c.body, hash(algo, r.body), `${path}.${algo}`);
  }
  return parser.parse(r.body).metadata;
}

export const pom = (g: string, a: string, v: string) =>
  `<project><modelVersion>4.0.0</modelVersion><groupId>${g}</groupId><artifactId>${a}</artifactId><version>${v}</version></project>\n`;
