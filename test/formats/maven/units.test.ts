/** The pure parts of the Maven format: path parsing, version order, metadata parse/serialise/merge. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseArtifactPath, splitChecksum, validatePath } from '../../../src/formats/maven/path.ts';
import { sortVersions } from '../../../src/formats/maven/version.ts';
import { mergeMetadata, parseMetadata, serializeMetadata } from '../../../src/formats/maven/metadata.ts';

describe('maven units', () => {
  it('parses layout paths', () => {
    assert.deepEqual(parseArtifactPath('org/acme/tool/1.0/tool-1.0-sources.jar'), {
      groupPath: 'org/acme', artifactId: 'tool', baseVersion: '1.0', version: '1.0', classifier: 'sources', extension: 'jar', timestamp: undefined, buildNumber: undefined,
    });
    const snap = parseArtifactPath('org/acme/tool/2.1-SNAPSHOT/tool-2.1-20261123.101010-7.tar.gz')!;
    assert.equal(snap.version, '2.1-20261123.101010-7');
    assert.equal(snap.buildNumber, 7);
    assert.equal(snap.extension, 'tar.gz');
    assert.equal(parseArtifactPath('org/acme/tool/2.1-SNAPSHOT/tool-2.1-SNAPSHOT.pom')!.version, '2.1-SNAPSHOT');
    assert.equal(parseArtifactPath('org/acme/tool/1.0/other-1.0.jar'), null);
    assert.equal(parseArtifactPath('org/acme/tool/1.0/tool-1.0'), null);
    assert.deepEqual(splitChecksum('a/b.jar.sha512'), { base: 'a/b.jar', algo: 'sha512' });
    assert.equal(splitChecksum('a/b.jar.asc'), null);
    assert.throws(() => validatePath('a/../b'), /not allowed/);
    assert.deepEqual(validatePath('a/b/'), { path: 'a/b', dir: true });
  });

  it('orders versions as Maven does', () => {
    assert.deepEqual(sortVersions(['1.10', '1.2', '1.0-SNAPSHOT', '1.0', '1.0-rc-1', '1.0-alpha-1', '1.0.1', '1.0-sp1']), [
      '1.0-alpha-1', '1.0-rc-1', '1.0-SNAPSHOT', '1.0', '1.0-sp1', '1.0.1', '1.2', '1.10',
    ]);
  });

  it('round-trips and merges metadata documents', () => {
    const a = parseMetadata(serializeMetadata({ groupId: 'g', artifactId: 'a', versioning: { versions: ['1.0', '2.0-SNAPSHOT'], latest: '2.0-SNAPSHOT', release: '1.0', lastUpdated: '20260101000000' } }));
    assert.deepEqual(a.versioning?.versions, ['1.0', '2.0-SNAPSHOT']);
    const b = parseMetadata('<metadata><versioning><versions><version>1.5</version></versions><lastUpdated>20270101000000</lastUpdated></versioning></metadata>');
    const m = mergeMetadata([a, b])!;
    assert.deepEqual(m.versioning?.versions, ['1.0', '1.5', '2.0-SNAPSHOT']);
    assert.equal(m.versioning?.release, '1.5');
    assert.equal(m.versioning?.lastUpdated, '20270101000000');
    assert.throws(() => parseMetadata('<project/>'), /no <metadata> root/);
    assert.throws(() => parseMetadata('<metadata>'), /not well-formed/);
  });
});
