/**
 * The deployment files in deploy/ configure Granary only through keys it knows: every GRANARY_* variable in
 * the Kubernetes manifests, the systemd environment file and the Dockerfile is one the config schema accepts,
 * and each set, loaded through the real config loader, gives a valid PostgreSQL + S3 configuration. (Starting
 * nodes configured this way is what two-nodes.test.ts does.)
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { envKeys } from '../../src/config/env.ts';
import { loadConfig } from '../../src/config/load.ts';

const DEPLOY = fileURLToPath(new URL('../../deploy/', import.meta.url));
const known = new Set(envKeys().map((k) => k.name));

function assertKnown(env: Record<string, string>, where: string): void {
  for (const name of Object.keys(env)) {
    if (name.startsWith('GRANARY_')) assert.ok(known.has(name), `${where}: ${name} is not a configuration variable`);
  }
}

interface K8sDoc {
  kind: string;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: { template?: { spec: { containers: { env?: { name: string; value?: string }[]; envFrom?: unknown[] }[] } } };
}

describe('deploy/', () => {
  it('Kubernetes manifests: valid YAML, known GRANARY_* keys, a PostgreSQL + S3 config the loader accepts', () => {
    const files = readdirSync(`${DEPLOY}kubernetes`).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.includes('granary.yaml'));
    const docs: K8sDoc[] = [];
    for (const f of files) {
      for (const d of parseAllDocuments(readFileSync(`${DEPLOY}kubernetes/${f}`, 'utf8'))) {
        assert.deepEqual(d.errors, [], f);
        docs.push(d.toJS() as K8sDoc);
      }
    }
    const env: Record<string, string> = {};
    for (const d of docs.filter((x) => x.kind === 'ConfigMap' || x.kind === 'Secret')) Object.assign(env, d.data, d.stringData);
    const deployment = docs.find((d) => d.kind === 'Deployment');
    assert.ok(deployment?.spec?.template);
    for (const e of deployment.spec.template.spec.containers[0].env ?? []) env[e.name] = e.value ?? '';
    assertKnown(env, 'kubernetes');
    const config = loadConfig({ base: {}, env });
    assert.equal(config.database.driver, 'postgres');
    assert.equal(config.blobs.driver, 's3');
    assert.equal(config.host, '0.0.0.0');
    assert.ok(config.blobs.s3?.bucket);
  });

  it('systemd: the environment file is known keys and a valid PostgreSQL + S3 config; the unit runs serve', () => {
    const env: Record<string, string> = {};
    for (const line of readFileSync(`${DEPLOY}systemd/granary.env`, 'utf8').split('\n')) {
      const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
      if (m) env[m[1]] = m[2];
    }
    assertKnown(env, 'granary.env');
    const config = loadConfig({ base: {}, env });
    assert.equal(config.database.driver, 'postgres');
    assert.equal(config.blobs.driver, 's3');
    const unit = readFileSync(`${DEPLOY}systemd/granary.service`, 'utf8');
    assert.match(unit, /^ExecStart=\/opt\/granary\/bin\/granary serve$/m);
    assert.match(unit, /^EnvironmentFile=\/etc\/granary\/granary\.env$/m);
  });

  it('Dockerfile: known GRANARY_* keys, runs `granary serve` as a non-root user', () => {
    const text = readFileSync(`${DEPLOY}Dockerfile`, 'utf8');
    const env: Record<string, string> = {};
    for (const m of text.matchAll(/(GRANARY_[A-Z0-9_]+)=(\S+)/g)) env[m[1]] = m[2];
    assert.ok(Object.keys(env).length > 0);
    assertKnown(env, 'Dockerfile');
    assert.equal(loadConfig({ base: {}, env }).port, 8080);
    assert.match(text, /^USER node$/m);
    assert.match(text, /^ENTRYPOINT \["\/opt\/granary\/bin\/granary"\]$/m);
    assert.match(text, /^CMD \["serve"\]$/m);
  });
});
