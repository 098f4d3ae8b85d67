import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { OciError } from '../../../src/formats/oci/errors.ts';
import {
  EMPTY_JSON_DIGEST,
  MANIFEST_MAX_BYTES,
  assertManifestDigest,
  digestOf,
  negotiate,
  parseAccept,
  parseDescriptor,
  parseManifest,
  referrerArtifactType,
  referrerDescriptor,
  requiredBlobs,
  requiredManifests,
} from '../../../src/formats/oci/manifest.ts';
import { MT, bareMediaType, isValidMediaType } from '../../../src/formats/oci/media-types.ts';

const j = (v: unknown): Buffer => Buffer.from(JSON.stringify(v, null, 2));
const hex = (c: string, n = 64): string => c.repeat(n);
const D = (c: string): string => `sha256:${hex(c)}`;

function throwsInvalid(fn: () => unknown, pattern?: RegExp, status = 400): OciError {
  let caught: unknown;
  assert.throws(fn, (e: unknown) => {
    caught = e;
    return true;
  });
  assert.ok(caught instanceof OciError, `expected OciError, got ${String(caught)}`);
  assert.equal(caught.code, 'MANIFEST_INVALID', caught.message);
  assert.equal(caught.status, status);
  if (pattern) assert.match(caught.message, pattern);
  return caught;
}

// --- Real-world shapes, copied from the specs ------------------------------------------------------------------

/** image-spec v1.1 manifest.md, "Example Image Manifest" (with subject). */
const OCI_IMAGE = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: {
    mediaType: 'application/vnd.oci.image.config.v1+json',
    digest: 'sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7',
    size: 7023,
  },
  layers: [
    {
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: 'sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0',
      size: 32654,
    },
    {
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: 'sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b',
      size: 16724,
    },
    {
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: 'sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736',
      size: 73109,
    },
  ],
  subject: {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: 'sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270',
    size: 7682,
  },
  annotations: { 'com.example.key1': 'value1', 'com.example.key2': 'value2' },
};

/** Docker "Image Manifest Version 2, Schema 2", example manifest. */
const DOCKER_V2S2 = {
  schemaVersion: 2,
  mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  config: {
    mediaType: 'application/vnd.docker.container.image.v1+json',
    size: 7023,
    digest: 'sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7',
  },
  layers: [
    {
      mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
      size: 32654,
      digest: 'sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f',
    },
    {
      mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
      size: 16724,
      digest: 'sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b',
    },
    {
      mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
      size: 73109,
      digest: 'sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736',
    },
  ],
};

/** Docker schema 2 manifest list example (the spec's copy has a trailing comma; see the test below). */
const DOCKER_LIST_TEXT = `{
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
  "manifests": [
    {
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "size": 7143,
      "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f",
      "platform": {
        "architecture": "ppc64le",
        "os": "linux"
      }
    },
    {
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "size": 7682,
      "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
      "platform": {
        "architecture": "amd64",
        "os": "linux",
        "features": [
          "sse4"
        ]
      }
    }
  ]
}`;

/** image-spec v1.1 image-index.md example, plus artifactType and subject (an SBOM index attached to an image). */
const OCI_INDEX_WITH_SUBJECT = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  artifactType: 'application/vnd.example.sbom.v1',
  manifests: [
    {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      size: 7143,
      digest: 'sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f',
      platform: { architecture: 'ppc64le', os: 'linux' },
    },
    {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      size: 7682,
      digest: 'sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270',
      platform: { architecture: 'amd64', os: 'windows', 'os.version': '10.0.14393.1066', 'os.features': ['win32k'] },
    },
  ],
  subject: {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: 'sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0',
    size: 1234,
  },
  annotations: { 'com.example.key1': 'value1', 'com.example.key2': 'value2' },
};

/** manifest.md "Guidelines for Artifact Usage", minimal artifact (empty config and layer). */
const MINIMAL_ARTIFACT = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  artifactType: 'application/vnd.example+type',
  config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY_JSON_DIGEST, size: 2 },
  layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY_JSON_DIGEST, size: 2 }],
  annotations: { 'oci.opencontainers.image.created': '2023-01-02T03:04:05Z', 'com.example.data': 'payload' },
};

/** Docker "Image Manifest Version 2, Schema 1" signed example (abridged history). */
const SCHEMA1_SIGNED = {
  name: 'hello-world',
  tag: 'latest',
  architecture: 'amd64',
  fsLayers: [
    { blobSum: 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef' },
    { blobSum: 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef' },
    { blobSum: 'sha256:cc8567d70002e957612902a8e985ea129d831ebe04057d88fb644857caa45d11' },
    { blobSum: 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef' },
  ],
  history: [{ v1Compatibility: '{"id":"e45a5af57b00862e5ef5782a9925979a02ba2b12dff832fd0991335f4a11e5c5"}' }],
  schemaVersion: 1,
  signatures: [
    {
      header: {
        jwk: {
          crv: 'P-256',
          kid: 'OD6I:6DRK:JXEJ:KBM4:255X:NSAA:MUSF:E4VM:ZI6W:CUN2:L4Z6:LSF4',
          kty: 'EC',
          x: '3gAwX48IQ5oaYQAYSxor6rYYc_6yjuLCjtQ9LUakg4A',
          y: 't72ge6kIA1XOjqjVoEOiPPAURltJFBMGDSQvEGVB010',
        },
        alg: 'ES256',
      },
      signature: 'XREm0L8WNn27Ga_iE_vRnTxVMhhYY0Zst_FfkKopg6gWSoTOZTuW4rK0fg_IqnKkEKlbD83tD46LKEGi5aIVFg',
      protected: 'eyJmb3JtYXRMZW5ndGgiOjY2MjgsImZvcm1hdFRhaWwiOiJDbjAiLCJ0aW1lIjoiMjAxNS0wNC0wOFQxODo1Mjo1OVoifQ',
    },
  ],
};

describe('parseManifest: real-world manifests', () => {
  test('OCI image manifest with subject and annotations', () => {
    const m = parseManifest(j(OCI_IMAGE), MT.OCI_MANIFEST);
    assert.equal(m.mediaType, MT.OCI_MANIFEST);
    assert.equal(m.kind, 'image');
    assert.deepEqual(m.config, OCI_IMAGE.config);
    assert.deepEqual(m.layers, OCI_IMAGE.layers);
    assert.deepEqual(m.manifests, []);
    assert.deepEqual(m.subject, OCI_IMAGE.subject);
    assert.deepEqual(m.annotations, OCI_IMAGE.annotations);
    assert.equal(m.artifactType, undefined);
    assert.deepEqual(
      requiredBlobs(m).map((d) => d.digest),
      [OCI_IMAGE.config.digest, ...OCI_IMAGE.layers.map((l) => l.digest)],
    );
    assert.deepEqual(requiredManifests(m), []);
    assert.equal(referrerArtifactType(m), MT.OCI_CONFIG);
  });

  test('Docker v2 schema 2 manifest', () => {
    const m = parseManifest(j(DOCKER_V2S2), MT.DOCKER_MANIFEST);
    assert.equal(m.mediaType, MT.DOCKER_MANIFEST);
    assert.equal(m.kind, 'image');
    assert.equal(m.layers.length, 3);
    assert.equal(requiredBlobs(m).length, 4);
  });

  test('Docker manifest list (and the spec copy with its trailing comma is not JSON)', () => {
    const m = parseManifest(Buffer.from(DOCKER_LIST_TEXT), MT.DOCKER_MANIFEST_LIST);
    assert.equal(m.kind, 'index');
    assert.equal(m.mediaType, MT.DOCKER_MANIFEST_LIST);
    assert.equal(m.manifests.length, 2);
    assert.deepEqual(m.manifests[1].platform, { architecture: 'amd64', os: 'linux', features: ['sse4'] });
    assert.deepEqual(requiredManifests(m).map((d) => d.size), [7143, 7682]);
    assert.deepEqual(requiredBlobs(m), []);
    const withComma = DOCKER_LIST_TEXT.replace('"os": "linux"\n      }', '"os": "linux",\n      }');
    throwsInvalid(() => parseManifest(Buffer.from(withComma), MT.DOCKER_MANIFEST_LIST), /not JSON/);
  });

  test('OCI index with subject and artifactType', () => {
    const m = parseManifest(j(OCI_INDEX_WITH_SUBJECT), MT.OCI_INDEX);
    assert.equal(m.kind, 'index');
    assert.equal(m.artifactType, 'application/vnd.example.sbom.v1');
    assert.deepEqual(m.subject, OCI_INDEX_WITH_SUBJECT.subject);
    assert.deepEqual(m.manifests[1].platform, OCI_INDEX_WITH_SUBJECT.manifests[1].platform);
    assert.equal(referrerArtifactType(m), 'application/vnd.example.sbom.v1');
    const idx = parseManifest(j({ ...OCI_INDEX_WITH_SUBJECT, artifactType: undefined }), MT.OCI_INDEX);
    assert.equal(referrerArtifactType(idx), undefined, 'an index without artifactType lists none');
  });

  test('minimal artifact (empty config) and its referrer descriptor', () => {
    const bytes = j(MINIMAL_ARTIFACT);
    const m = parseManifest(bytes, MT.OCI_MANIFEST);
    assert.equal(m.artifactType, 'application/vnd.example+type');
    assert.deepEqual(requiredBlobs(m).map((d) => d.digest), [EMPTY_JSON_DIGEST], 'deduplicated');
    const digest = digestOf(bytes);
    assert.deepEqual(referrerDescriptor(m, digest, bytes.length), {
      mediaType: MT.OCI_MANIFEST,
      digest,
      size: bytes.length,
      artifactType: 'application/vnd.example+type',
      annotations: MINIMAL_ARTIFACT.annotations,
    });
  });

  test('the empty JSON digest constant is sha256 of {}', () => {
    assert.equal(digestOf(Buffer.from('{}')), EMPTY_JSON_DIGEST);
  });

  test('Docker schema 1 (signed and unsigned) is refused with MANIFEST_INVALID', () => {
    const e = throwsInvalid(() => parseManifest(j(SCHEMA1_SIGNED), MT.DOCKER_SCHEMA1_SIGNED), /schema 1 manifests are not supported/);
    assert.equal(e.status, 400);
    throwsInvalid(() => parseManifest(j(SCHEMA1_SIGNED), MT.DOCKER_SCHEMA1), /schema 1/);
    throwsInvalid(() => parseManifest(j(SCHEMA1_SIGNED), undefined), /schema 1/);
    throwsInvalid(() => parseManifest(j(SCHEMA1_SIGNED), MT.OCI_MANIFEST), /schema 1/);
    throwsInvalid(() => parseManifest(j(OCI_IMAGE), MT.DOCKER_SCHEMA1_SIGNED), /schema 1/);
  });

  test('the removed OCI artifact manifest is refused', () => {
    const am = { mediaType: MT.OCI_ARTIFACT_MANIFEST, artifactType: 'application/x', blobs: [] };
    throwsInvalid(() => parseManifest(j(am), MT.OCI_ARTIFACT_MANIFEST), /removed/);
  });
});

describe('parseManifest: Content-Type and mediaType', () => {
  test('Content-Type parameters and case are ignored', () => {
    assert.equal(parseManifest(j(OCI_IMAGE), `${MT.OCI_MANIFEST}; charset=utf-8`).mediaType, MT.OCI_MANIFEST);
    assert.equal(parseManifest(j(OCI_IMAGE), 'Application/VND.OCI.Image.Manifest.v1+JSON').mediaType, MT.OCI_MANIFEST);
  });

  test('mediaType field must equal Content-Type', () => {
    const e = throwsInvalid(() => parseManifest(j(OCI_IMAGE), MT.OCI_INDEX), /does not match Content-Type/);
    assert.deepEqual(e.detail, { field: 'mediaType', mediaType: MT.OCI_MANIFEST, contentType: MT.OCI_INDEX });
    throwsInvalid(() => parseManifest(j(DOCKER_V2S2), MT.OCI_MANIFEST), /does not match/);
    throwsInvalid(() => parseManifest(j({ ...OCI_IMAGE, mediaType: 'application/vnd.OCI.image.manifest.v1+json' }), MT.OCI_MANIFEST), /does not match/);
  });

  test('OCI manifests may omit mediaType; the Content-Type then decides', () => {
    const { mediaType: _drop, ...noMt } = OCI_IMAGE;
    assert.equal(parseManifest(j(noMt), MT.OCI_MANIFEST).mediaType, MT.OCI_MANIFEST);
    const { mediaType: _drop2, ...idxNoMt } = OCI_INDEX_WITH_SUBJECT;
    assert.equal(parseManifest(j(idxNoMt), MT.OCI_INDEX).mediaType, MT.OCI_INDEX);
  });

  test('generic or missing Content-Type: the body decides, by mediaType or by shape', () => {
    for (const ct of [undefined, '', 'application/json', 'application/octet-stream', 'text/plain; charset=utf-8']) {
      assert.equal(parseManifest(j(DOCKER_V2S2), ct).mediaType, MT.DOCKER_MANIFEST, String(ct));
      const { mediaType: _a, ...noMt } = OCI_IMAGE;
      assert.equal(parseManifest(j(noMt), ct).mediaType, MT.OCI_MANIFEST);
      const { mediaType: _b, ...idxNoMt } = OCI_INDEX_WITH_SUBJECT;
      assert.equal(parseManifest(j(idxNoMt), ct).mediaType, MT.OCI_INDEX);
    }
    throwsInvalid(() => parseManifest(j({ schemaVersion: 2 }), undefined), /cannot tell/);
  });

  test('Docker types require the mediaType field', () => {
    const { mediaType: _drop, ...noMt } = DOCKER_V2S2;
    throwsInvalid(() => parseManifest(j(noMt), MT.DOCKER_MANIFEST), /mediaType: is required/);
    const list = JSON.parse(DOCKER_LIST_TEXT);
    delete list.mediaType;
    throwsInvalid(() => parseManifest(j(list), MT.DOCKER_MANIFEST_LIST), /mediaType: is required/);
  });

  test('unknown manifest media types are refused', () => {
    throwsInvalid(() => parseManifest(j(OCI_IMAGE), 'application/vnd.example.thing+json'), /unsupported manifest media type|does not match/);
    throwsInvalid(() => parseManifest(j({ ...OCI_IMAGE, mediaType: 'application/vnd.example.thing' }), undefined), /unsupported manifest media type/);
    throwsInvalid(() => parseManifest(j({ ...OCI_IMAGE, mediaType: 7 }), MT.OCI_MANIFEST), /mediaType: must be a string/);
  });
});

describe('parseManifest: bad inputs', () => {
  const cases: [string, unknown, string | undefined, RegExp][] = [
    ['array body', [OCI_IMAGE], MT.OCI_MANIFEST, /JSON object/],
    ['null body', null, MT.OCI_MANIFEST, /JSON object/],
    ['string body', 'x', MT.OCI_MANIFEST, /JSON object/],
    ['schemaVersion missing', { ...OCI_IMAGE, schemaVersion: undefined }, MT.OCI_MANIFEST, /schemaVersion/],
    ['schemaVersion "2"', { ...OCI_IMAGE, schemaVersion: '2' }, MT.OCI_MANIFEST, /schemaVersion/],
    ['schemaVersion 3', { ...OCI_IMAGE, schemaVersion: 3 }, MT.OCI_MANIFEST, /schemaVersion/],
    ['config missing', { ...OCI_IMAGE, config: undefined }, MT.OCI_MANIFEST, /config: is required/],
    ['config null', { ...OCI_IMAGE, config: null }, MT.OCI_MANIFEST, /config: must be a descriptor/],
    ['layers missing', { ...OCI_IMAGE, layers: undefined }, MT.OCI_MANIFEST, /layers: is required/],
    ['layers null', { ...OCI_IMAGE, layers: null }, MT.OCI_MANIFEST, /layers: must be an array/],
    ['layers object', { ...OCI_IMAGE, layers: {} }, MT.OCI_MANIFEST, /layers: must be an array/],
    ['layer not an object', { ...OCI_IMAGE, layers: ['sha256:x'] }, MT.OCI_MANIFEST, /layers\[0\]: must be a descriptor/],
    ['layer without mediaType', { ...OCI_IMAGE, layers: [{ digest: D('a'), size: 1 }] }, MT.OCI_MANIFEST, /layers\[0\]\.mediaType/],
    ['layer mediaType with params', { ...OCI_IMAGE, layers: [{ mediaType: 'application/x; a=b', digest: D('a'), size: 1 }] }, MT.OCI_MANIFEST, /RFC 6838/],
    ['layer mediaType without subtype', { ...OCI_IMAGE, layers: [{ mediaType: 'application', digest: D('a'), size: 1 }] }, MT.OCI_MANIFEST, /RFC 6838/],
    ['layer mediaType empty', { ...OCI_IMAGE, layers: [{ mediaType: '', digest: D('a'), size: 1 }] }, MT.OCI_MANIFEST, /RFC 6838/],
    ['layer without digest', { ...OCI_IMAGE, layers: [{ mediaType: MT.OCI_LAYER, size: 1 }] }, MT.OCI_MANIFEST, /layers\[0\]\.digest: is required/],
    ['upper-case hex digest', { ...OCI_IMAGE, layers: [{ mediaType: MT.OCI_LAYER, digest: `sha256:${hex('A')}`, size: 1 }] }, MT.OCI_MANIFEST, /malformed digest/],
    ['short digest', { ...OCI_IMAGE, layers: [{ mediaType: MT.OCI_LAYER, digest: 'sha256:abc', size: 1 }] }, MT.OCI_MANIFEST, /malformed digest/],
    ['sha384 digest', { ...OCI_IMAGE, layers: [{ mediaType: MT.OCI_LAYER, digest: `sha384:${hex('a', 96)}`, size: 1 }] }, MT.OCI_MANIFEST, /unsupported digest/],
    ['garbage digest', { ...OCI_IMAGE, config: { mediaType: MT.OCI_CONFIG, digest: 'hello', size: 1 } }, MT.OCI_MANIFEST, /config\.digest: malformed/],
    ['negative size', { ...OCI_IMAGE, layers: [{ mediaType: MT.OCI_LAYER, digest: D('a'), size: -1 }] }, MT.OCI_MANIFEST, /size/],
    ['fractional size', { ...OCI_IMAGE, layers: [{ mediaType: MT.OCI_LAYER, digest: D('a'), size: 1.5 }] }, MT.OCI_MANIFEST, /size/],
    ['string size', { ...OCI_IMAGE, layers: [{ mediaType: MT.OCI_LAYER, digest: D('a'), size: '12' }] }, MT.OCI_MANIFEST, /size/],
    ['missing size', { ...OCI_IMAGE, layers: [{ mediaType: MT.OCI_LAYER, digest: D('a') }] }, MT.OCI_MANIFEST, /size/],
    ['unsafe size', { ...OCI_IMAGE, layers: [{ mediaType: MT.OCI_LAYER, digest: D('a'), size: 2 ** 63 }] }, MT.OCI_MANIFEST, /size/],
    ['annotations array', { ...OCI_IMAGE, annotations: ['a'] }, MT.OCI_MANIFEST, /annotations: must be an object/],
    ['annotation value number', { ...OCI_IMAGE, annotations: { a: 1 } }, MT.OCI_MANIFEST, /annotations\.a/],
    ['descriptor annotation value null', { ...OCI_IMAGE, layers: [{ mediaType: MT.OCI_LAYER, digest: D('a'), size: 1, annotations: { k: null } }] }, MT.OCI_MANIFEST, /layers\[0\]\.annotations\.k/],
    ['urls not array', { ...OCI_IMAGE, layers: [{ mediaType: MT.OCI_LAYER, digest: D('a'), size: 1, urls: 'http://x' }] }, MT.OCI_MANIFEST, /urls/],
    ['urls not URLs', { ...OCI_IMAGE, layers: [{ mediaType: MT.OCI_LAYER, digest: D('a'), size: 1, urls: ['not a url'] }] }, MT.OCI_MANIFEST, /urls/],
    ['artifactType invalid', { ...OCI_IMAGE, artifactType: 'sbom' }, MT.OCI_MANIFEST, /artifactType/],
    ['artifactType not string', { ...OCI_IMAGE, artifactType: 1 }, MT.OCI_MANIFEST, /artifactType/],
    ['subject not descriptor', { ...OCI_IMAGE, subject: D('a') }, MT.OCI_MANIFEST, /subject: must be a descriptor/],
    ['subject bad digest', { ...OCI_IMAGE, subject: { mediaType: MT.OCI_MANIFEST, digest: 'sha256:1', size: 1 } }, MT.OCI_MANIFEST, /subject\.digest/],
    ['empty config without artifactType', { ...MINIMAL_ARTIFACT, artifactType: undefined }, MT.OCI_MANIFEST, /artifactType: is required/],
    ['image manifest with manifests (ambiguous)', { ...OCI_IMAGE, manifests: [] }, MT.OCI_MANIFEST, /expected manifest but found index/],
    ['index with layers (ambiguous)', { ...OCI_INDEX_WITH_SUBJECT, layers: [] }, MT.OCI_INDEX, /expected index but found manifest/],
    ['index with config (ambiguous)', { ...OCI_INDEX_WITH_SUBJECT, config: OCI_IMAGE.config }, MT.OCI_INDEX, /expected index but found manifest/],
    ['index without manifests', { schemaVersion: 2, mediaType: MT.OCI_INDEX }, MT.OCI_INDEX, /manifests: is required/],
    ['index manifests not array', { schemaVersion: 2, mediaType: MT.OCI_INDEX, manifests: {} }, MT.OCI_INDEX, /manifests: must be an array/],
    ['index child bad size', { schemaVersion: 2, mediaType: MT.OCI_INDEX, manifests: [{ mediaType: MT.OCI_MANIFEST, digest: D('a'), size: null }] }, MT.OCI_INDEX, /manifests\[0\]\.size/],
    ['platform without os', { schemaVersion: 2, mediaType: MT.OCI_INDEX, manifests: [{ mediaType: MT.OCI_MANIFEST, digest: D('a'), size: 1, platform: { architecture: 'amd64' } }] }, MT.OCI_INDEX, /platform\.os/],
    ['platform without architecture', { schemaVersion: 2, mediaType: MT.OCI_INDEX, manifests: [{ mediaType: MT.OCI_MANIFEST, digest: D('a'), size: 1, platform: { os: 'linux' } }] }, MT.OCI_INDEX, /platform\.architecture/],
    ['platform features not strings', { schemaVersion: 2, mediaType: MT.OCI_INDEX, manifests: [{ mediaType: MT.OCI_MANIFEST, digest: D('a'), size: 1, platform: { os: 'linux', architecture: 'arm', 'os.features': [1] } }] }, MT.OCI_INDEX, /os\.features/],
    ['docker list child without digest', { schemaVersion: 2, mediaType: MT.DOCKER_MANIFEST_LIST, manifests: [{ mediaType: MT.DOCKER_MANIFEST, size: 1 }] }, MT.DOCKER_MANIFEST_LIST, /manifests\[0\]\.digest/],
  ];
  for (const [label, body, ct, pattern] of cases) {
    test(label, () => {
      throwsInvalid(() => parseManifest(j(body), ct), pattern);
    });
  }

  test('non-JSON, invalid UTF-8, empty body', () => {
    throwsInvalid(() => parseManifest(Buffer.from('{"schemaVersion":2,'), MT.OCI_MANIFEST), /not JSON/);
    throwsInvalid(() => parseManifest(Buffer.from(''), MT.OCI_MANIFEST), /not JSON/);
    throwsInvalid(() => parseManifest(Buffer.from([0x7b, 0xff, 0x7d]), MT.OCI_MANIFEST), /UTF-8/);
  });

  test('the detail names the failing field', () => {
    const e = throwsInvalid(() => parseManifest(j({ ...OCI_IMAGE, layers: [OCI_IMAGE.layers[0], { ...OCI_IMAGE.layers[1], size: -5 }] }), MT.OCI_MANIFEST));
    assert.deepEqual(e.detail, { field: 'layers[1].size', reason: 'must be a non-negative integer' });
  });

  test('too large → MANIFEST_INVALID with status 413', () => {
    const big = j({ ...OCI_IMAGE, annotations: { pad: 'x'.repeat(100) } });
    throwsInvalid(() => parseManifest(big, MT.OCI_MANIFEST, { maxBytes: 100 }), /larger than 100 bytes/, 413);
    assert.equal(MANIFEST_MAX_BYTES, 4 * 1024 * 1024);
    const padded = Buffer.concat([j(OCI_IMAGE), Buffer.alloc(MANIFEST_MAX_BYTES, 0x20)]);
    throwsInvalid(() => parseManifest(padded, MT.OCI_MANIFEST), /larger than/, 413);
  });

  test('the empty-config rule can be relaxed (proxies)', () => {
    const m = parseManifest(j({ ...MINIMAL_ARTIFACT, artifactType: undefined }), MT.OCI_MANIFEST, { requireArtifactTypeForEmptyConfig: false });
    assert.equal(referrerArtifactType(m), MT.OCI_EMPTY);
  });
});

describe('parseManifest: leniency the specs require', () => {
  test('unknown layer/config media types and artifactTypes are accepted (MUST NOT error)', () => {
    const m = parseManifest(
      j({
        ...OCI_IMAGE,
        artifactType: 'application/vnd.unknown.thing.v9+x-y',
        config: { ...OCI_IMAGE.config, mediaType: 'application/vnd.cncf.helm.config.v1+json' },
        layers: [{ mediaType: 'application/vnd.example.data.v1.tar+zstd', digest: D('c'), size: 0 }],
      }),
      MT.OCI_MANIFEST,
    );
    assert.equal(m.layers[0].size, 0, 'size 0 is valid');
    assert.equal(referrerArtifactType(m), 'application/vnd.unknown.thing.v9+x-y');
  });

  test('unknown top-level and descriptor fields are ignored', () => {
    const m = parseManifest(j({ ...OCI_IMAGE, futureField: { a: 1 }, layers: [{ ...OCI_IMAGE.layers[0], futureDescField: true }] }), MT.OCI_MANIFEST);
    assert.deepEqual(Object.keys(m.layers[0]).sort(), ['digest', 'mediaType', 'size']);
  });

  test('empty layers array is valid; sha512 digests are valid', () => {
    const m = parseManifest(j({ ...OCI_IMAGE, layers: [], config: { ...OCI_IMAGE.config, digest: `sha512:${hex('d', 128)}` } }), MT.OCI_MANIFEST);
    assert.deepEqual(m.layers, []);
    assert.equal(m.config?.digest, `sha512:${hex('d', 128)}`);
  });

  test('foreign / non-distributable layers with urls are not required blobs', () => {
    const foreign = { mediaType: MT.DOCKER_FOREIGN_LAYER, size: 10, digest: D('f'), urls: ['https://example.com/layer.tar.gz'] };
    const m = parseManifest(j({ ...DOCKER_V2S2, layers: [...DOCKER_V2S2.layers, foreign] }), MT.DOCKER_MANIFEST);
    assert.equal(m.layers.length, 4);
    assert.ok(!requiredBlobs(m).some((d) => d.digest === D('f')));
  });

  test('index children of non-manifest type are required blobs, not manifests', () => {
    const m = parseManifest(
      j({ schemaVersion: 2, mediaType: MT.OCI_INDEX, manifests: [{ mediaType: 'application/vnd.example.blob', digest: D('1'), size: 3 }, { mediaType: MT.OCI_INDEX, digest: D('2'), size: 4 }] }),
      MT.OCI_INDEX,
    );
    assert.deepEqual(requiredBlobs(m).map((d) => d.digest), [D('1')]);
    assert.deepEqual(requiredManifests(m).map((d) => d.digest), [D('2')]);
  });

  test('subject and artifactType are ignored on Docker types', () => {
    const m = parseManifest(j({ ...DOCKER_V2S2, subject: OCI_IMAGE.subject, artifactType: 'application/x-y' }), MT.DOCKER_MANIFEST);
    assert.equal(m.subject, undefined);
    assert.equal(m.artifactType, undefined);
    assert.equal(referrerArtifactType(m), MT.DOCKER_CONFIG);
  });
});

describe('descriptors with embedded data', () => {
  test('data matching digest and size is kept', () => {
    const d = parseDescriptor({ mediaType: MT.OCI_EMPTY, digest: EMPTY_JSON_DIGEST, size: 2, data: 'e30=' }, 'config');
    assert.equal(d.data, 'e30=');
    const bytes = Buffer.from('hello world');
    const d512 = `sha512:${createHash('sha512').update(bytes).digest('hex')}`;
    assert.equal(parseDescriptor({ mediaType: 'text/plain', digest: d512, size: 11, data: bytes.toString('base64') }, 'x').size, 11);
  });
  test('data that is not base64, or does not match, is refused', () => {
    throwsInvalid(() => parseDescriptor({ mediaType: MT.OCI_EMPTY, digest: EMPTY_JSON_DIGEST, size: 2, data: 'e30' }, 'config'), /base64/);
    throwsInvalid(() => parseDescriptor({ mediaType: MT.OCI_EMPTY, digest: EMPTY_JSON_DIGEST, size: 2, data: '!!!!' }, 'config'), /base64/);
    throwsInvalid(() => parseDescriptor({ mediaType: MT.OCI_EMPTY, digest: EMPTY_JSON_DIGEST, size: 3, data: 'e30=' }, 'config'), /length/);
    throwsInvalid(() => parseDescriptor({ mediaType: MT.OCI_EMPTY, digest: D('a'), size: 2, data: 'e30=' }, 'config'), /does not match digest/);
    throwsInvalid(() => parseDescriptor({ mediaType: MT.OCI_EMPTY, digest: EMPTY_JSON_DIGEST, size: 2, data: 5 }, 'config'), /base64/);
  });
});

describe('digests of manifests', () => {
  test('digestOf hashes the exact bytes', () => {
    const a = Buffer.from('{"a":1}');
    const b = Buffer.from('{ "a": 1 }');
    assert.notEqual(digestOf(a), digestOf(b));
    assert.match(digestOf(a, 'sha512'), /^sha512:[a-f0-9]{128}$/);
  });
  test('assertManifestDigest uses the reference algorithm', () => {
    const bytes = j(OCI_IMAGE);
    assertManifestDigest(bytes, digestOf(bytes));
    assertManifestDigest(bytes, digestOf(bytes, 'sha512'));
    assert.throws(
      () => assertManifestDigest(bytes, D('0')),
      (e: unknown) => e instanceof OciError && e.code === 'DIGEST_INVALID' && e.status === 400,
    );
  });
});

describe('media types', () => {
  test('RFC 6838 names', () => {
    for (const mt of [MT.OCI_MANIFEST, MT.DOCKER_LAYER, 'application/vnd.example+type', 'text/plain', 'a/b', 'application/vnd.in-toto+json']) assert.ok(isValidMediaType(mt), mt);
    for (const mt of ['', 'a', '/b', 'a/', 'a/b/c', 'a b/c', 'application/json; charset=utf-8', '-a/b', `a/${'b'.repeat(128)}`, 5, null]) assert.ok(!isValidMediaType(mt), String(mt));
  });
  test('bareMediaType', () => {
    assert.equal(bareMediaType(undefined), '');
    assert.equal(bareMediaType(' Application/JSON ; charset=UTF-8'), 'application/json');
  });
});

describe('negotiate', () => {
  test('the stored type is always what is served', () => {
    for (const accept of [undefined, '', MT.DOCKER_MANIFEST, 'text/html', '*/*;q=0']) {
      assert.equal(negotiate(accept, MT.OCI_INDEX).contentType, MT.OCI_INDEX);
    }
  });
  test('acceptable reflects the Accept header', () => {
    assert.equal(negotiate(undefined, MT.OCI_MANIFEST).acceptable, true);
    assert.equal(negotiate('', MT.OCI_MANIFEST).acceptable, true);
    // what containers/image (skopeo, podman, buildah) sends
    const skopeo =
      'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.v1+prettyjws, application/vnd.docker.distribution.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json';
    for (const mt of [MT.OCI_MANIFEST, MT.OCI_INDEX, MT.DOCKER_MANIFEST, MT.DOCKER_MANIFEST_LIST]) assert.equal(negotiate(skopeo, mt).acceptable, true, mt);
    assert.equal(negotiate(MT.DOCKER_MANIFEST, MT.OCI_MANIFEST).acceptable, false);
    assert.equal(negotiate([MT.DOCKER_MANIFEST, MT.OCI_MANIFEST], MT.OCI_MANIFEST).acceptable, true, 'several header lines');
    assert.equal(negotiate('*/*', MT.OCI_MANIFEST).acceptable, true);
    assert.equal(negotiate('application/*', MT.OCI_MANIFEST).acceptable, true);
    assert.equal(negotiate('text/*', MT.OCI_MANIFEST).acceptable, false);
    assert.equal(negotiate(`${MT.OCI_MANIFEST};q=0`, MT.OCI_MANIFEST).acceptable, false);
    assert.equal(negotiate(`*/*;q=0, ${MT.OCI_MANIFEST}`, MT.OCI_MANIFEST).acceptable, true, 'most specific range wins');
    assert.equal(negotiate(`${MT.OCI_MANIFEST.toUpperCase()}`, MT.OCI_MANIFEST).acceptable, true);
  });
  test('parseAccept', () => {
    assert.deepEqual(parseAccept('a/b;q=0.5, c/d , junk, ;q=1, e/f;level=1;q=0'), [
      { type: 'a/b', q: 0.5 },
      { type: 'c/d', q: 1 },
      { type: 'e/f', q: 0 },
    ]);
    assert.deepEqual(parseAccept(undefined), []);
    assert.deepEqual(parseAccept('a/b;q=7'), [{ type: 'a/b', q: 1 }]);
  });
});
