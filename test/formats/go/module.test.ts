/**
 * The Go rules as pure functions: semantic-version parsing and ordering (x/mod/semver), pseudo-versions,
 * case escaping, module and file path checks (x/mod/module), major-version suffixes, go.mod parsing
 * (module, go, retract), the `@latest` choice, and the module-zip file rules (vendor, collisions).
 * Expected values are taken from the Go documentation and x/mod's own test tables.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonical, compareSemver, isPseudoVersion, isValidSemver } from '../../../src/formats/go/semver.ts';
import { checkFilePath, checkModulePath, checkModuleVersion, escapeCase, parseRequestPath, splitPathVersion, unescapeCase } from '../../../src/formats/go/module.ts';
import { isRetracted, parseModFile } from '../../../src/formats/go/modfile.ts';
import { chooseLatest, retractionSource } from '../../../src/formats/go/hosted.ts';
import { CollisionChecker, isVendoredPackage } from '../../../src/formats/go/zip-rules.ts';

describe('semver', () => {
  it('validates like x/mod/semver', () => {
    for (const v of ['v1', 'v1.2', 'v1.2.3', 'v1.2.3-pre', 'v1.2.3-pre.1+meta', 'v0.0.0-20240102150405-abcdef123456', 'v2.0.0+incompatible']) {
      assert.ok(isValidSemver(v), v);
    }
    for (const v of ['1.2.3', 'v01.2.3', 'v1.02.3', 'v1.2.3-01', 'v1.2-pre', 'v1.2.3-', 'v1.2.3+', 'v1.2.3-a..b', 'v', '']) {
      assert.ok(!isValidSemver(v), v);
    }
  });
  it('canonicalizes', () => {
    assert.equal(canonical('v1'), 'v1.0.0');
    assert.equal(canonical('v1.2'), 'v1.2.0');
    assert.equal(canonical('v1.2.3+meta'), 'v1.2.3');
    assert.equal(canonical('v2.0.0+incompatible'), 'v2.0.0+incompatible');
  });
  it('orders like x/mod/semver', () => {
    const sorted = ['v0.9.0', 'v1.0.0-alpha', 'v1.0.0-alpha.1', 'v1.0.0-alpha.beta', 'v1.0.0-beta', 'v1.0.0-beta.2', 'v1.0.0-beta.11', 'v1.0.0-rc.1', 'v1.0.0', 'v1.2.0', 'v1.10.0', 'v10.0.0'];
    const shuffled = [...sorted].reverse();
    assert.deepEqual(shuffled.sort(compareSemver), sorted);
    assert.equal(compareSemver('v1.0.0+a', 'v1.0.0+b'), 0);
    assert.equal(compareSemver('bad', 'v0.0.1'), -1);
  });
  it('recognizes pseudo-versions', () => {
    for (const v of ['v0.0.0-20191109021931-daa7c04131f5', 'v1.2.4-0.20191109021931-daa7c04131f5', 'v1.2.3-pre.0.20191109021931-daa7c04131f5', 'v2.0.0-20191109021931-daa7c04131f5+incompatible']) {
      assert.ok(isPseudoVersion(v), v);
    }
    for (const v of ['v1.0.0', 'v1.0.0-rc.1', 'v0.0.0-2019110902193-daa7c04131f5', 'v1.2.4-20191109021931-daa7c04131f5']) {
      assert.ok(!isPseudoVersion(v), v);
    }
  });
});

describe('module paths', () => {
  it('escapes and unescapes case', () => {
    assert.equal(escapeCase('github.com/Azure/azure-sdk-for-go'), 'github.com/!azure/azure-sdk-for-go');
    assert.equal(escapeCase('example.com/ABC'), 'example.com/!a!b!c');
    assert.equal(unescapeCase('github.com/!azure/azure-sdk-for-go'), 'github.com/Azure/azure-sdk-for-go');
    assert.equal(unescapeCase('example.com/Azure'), null, 'bare upper case is not an escaped path');
    assert.equal(unescapeCase('example.com/!'), null);
    assert.equal(unescapeCase('example.com/!1'), null);
  });
  it('checks module paths like module.CheckPath', () => {
    for (const p of ['example.com/m', 'example.com/Upper/m', 'example.com/m/v2', 'gopkg.in/yaml.v3', 'my-host.example.org/a_b/c~d']) assert.equal(checkModulePath(p), null, p);
    for (const [p, re] of [
      ['example', /missing dot/],
      ['Example.com/m', /invalid char in first path element/],
      ['example.com/m/v1', /invalid version suffix/],
      ['example.com/m/v0', /invalid version suffix/],
      ['example.com/m/v02', /invalid version suffix/],
      ['example.com/.hidden', /leading dot/],
      ['example.com//m', /double slash/],
      ['example.com/m/', /trailing slash/],
      ['example.com/a b', /invalid char/],
      ['example.com/con', /disallowed as path element component on Windows/],
      ['-example.com/m', /leading dash/],
      ['example.com/git~1', /trailing tilde and digits/],
    ] as const) {
      assert.match(checkModulePath(p) ?? 'valid', re, p);
    }
  });
  it('checks file paths like module.CheckFilePath', () => {
    for (const p of ['a.go', 'dir/a b.go', '.github/workflows/x.yml', 'x/[y]/{z}.txt', 'ü/ñ.go', 'vendor/modules.txt']) assert.equal(checkFilePath(p), null, p);
    for (const [p, re] of [
      ['a:b.go', /invalid char ":"/],
      ['a\\b.go', /invalid char/],
      ['../a.go', /invalid path element/],
      ['dir/', /trailing slash/],
      ['/abs', /leading slash/],
      ['dir/aux.txt', /Windows/],
      ['trail.', /trailing dot/],
      ["quote'.go", /invalid char/],
    ] as const) {
      assert.match(checkFilePath(p) ?? 'valid', re, p);
    }
  });
  it('splits major-version suffixes', () => {
    assert.deepEqual(splitPathVersion('example.com/m/v2'), { prefix: 'example.com/m', pathMajor: '/v2' });
    assert.deepEqual(splitPathVersion('example.com/m'), { prefix: 'example.com/m', pathMajor: '' });
    assert.deepEqual(splitPathVersion('gopkg.in/yaml.v2'), { prefix: 'gopkg.in/yaml', pathMajor: '.v2' });
    assert.equal(splitPathVersion('example.com/m/v1'), null);
  });
  it('matches versions to paths like module.Check', () => {
    checkModuleVersion('example.com/m', 'v1.2.3');
    checkModuleVersion('example.com/m', 'v0.0.0-20191109021931-daa7c04131f5');
    checkModuleVersion('example.com/m/v3', 'v3.0.0-rc.1');
    checkModuleVersion('example.com/m', 'v4.1.0+incompatible');
    checkModuleVersion('gopkg.in/yaml.v2', 'v2.4.0');
    assert.throws(() => checkModuleVersion('example.com/m/v3', 'v2.0.0'), /should be v3, not v2/);
    assert.throws(() => checkModuleVersion('example.com/m', 'v2.0.0'), /should be v0 or v1, not v2/);
    assert.throws(() => checkModuleVersion('example.com/m/v2', 'v2.0.0+incompatible'), /\+incompatible suffix not allowed/);
    assert.throws(() => checkModuleVersion('example.com/m', 'v1.0.0+incompatible'), /major version v1 is compatible/);
    assert.throws(() => checkModuleVersion('example.com/m', 'v1.2'), /not a canonical version \(use v1.2.0\)/);
  });
  it('parses GOPROXY request paths', () => {
    assert.deepEqual(parseRequestPath('example.com/!upper/m/@v/list'), { module: 'example.com/Upper/m', escaped: 'example.com/!upper/m', file: 'list' });
    assert.deepEqual(parseRequestPath('example.com/m/@latest'), { module: 'example.com/m', escaped: 'example.com/m', file: 'latest' });
    assert.deepEqual(parseRequestPath('example.com/m/v2/@v/v2.0.0-!r!c1.zip'), { module: 'example.com/m/v2', escaped: 'example.com/m/v2', file: 'zip', version: 'v2.0.0-RC1' });
    assert.equal(parseRequestPath('example.com/m/@v/v1.0.0.tar'), null);
    assert.equal(parseRequestPath('example.com/m'), null);
    assert.throws(() => parseRequestPath('example.com/M/@v/list'), /invalid escaped module path/);
    assert.throws(() => parseRequestPath('example.com/m/@v/../../x.info'), /disallowed version string/);
    assert.throws(() => parseRequestPath('example.com/m/@v/a:b.info'), /disallowed version string/);
    assert.equal((parseRequestPath('example.com/m/@v/master.info') as { version: string }).version, 'master', 'a query is fine');
  });
});

describe('go.mod', () => {
  it('reads module, go and retract directives', () => {
    const mf = parseModFile(
      [
        '// a comment',
        'module "example.com/m" // quoted is allowed',
        '',
        'go 1.21',
        'require example.com/dep v1.0.0',
        'retract v1.0.1 // oops',
        'retract [v1.1.0, v1.1.5]',
        'retract (',
        '\tv1.2.0',
        '\t[v1.3.0, v1.3.9] // range in a block',
        ')',
      ].join('\n'),
    );
    assert.equal(mf.module, 'example.com/m');
    assert.equal(mf.go, '1.21');
    assert.deepEqual(mf.retract, [
      { low: 'v1.0.1', high: 'v1.0.1' },
      { low: 'v1.1.0', high: 'v1.1.5' },
      { low: 'v1.2.0', high: 'v1.2.0' },
      { low: 'v1.3.0', high: 'v1.3.9' },
    ]);
    assert.ok(isRetracted('v1.1.3', mf.retract));
    assert.ok(!isRetracted('v1.1.6', mf.retract));
  });
  it('refuses go.mod text go would not read', () => {
    assert.throws(() => parseModFile('module a b\n'), /go.mod:1: usage: module/);
    assert.throws(() => parseModFile('module a\nmodule b\n'), /repeated module statement/);
    assert.throws(() => parseModFile('module a\nretract (\n v1.0.0\n'), /unterminated retract block/);
    assert.throws(() => parseModFile('module a\nretract latest\n'), /invalid retract/);
  });
});

describe('@latest', () => {
  it('prefers releases, then prereleases, then pseudo-versions, skipping retracted ones', () => {
    assert.equal(chooseLatest(['v1.0.0', 'v1.1.0-rc.1', 'v0.0.0-20240101000000-abcdefabcdef'], []), 'v1.0.0');
    assert.equal(chooseLatest(['v1.1.0-rc.1', 'v1.1.0-beta', 'v0.0.0-20240101000000-abcdefabcdef'], []), 'v1.1.0-rc.1');
    assert.equal(chooseLatest(['v0.0.0-20240101000000-abcdefabcdef', 'v0.0.0-20240202000000-abcdefabcdef'], []), 'v0.0.0-20240202000000-abcdefabcdef');
    assert.equal(chooseLatest(['v1.0.0', 'v1.1.0', 'v1.2.0'], [{ low: 'v1.1.0', high: 'v1.2.0' }]), 'v1.0.0');
    assert.equal(chooseLatest(['v1.0.0'], [{ low: 'v1.0.0', high: 'v1.0.0' }]), 'v1.0.0', 'all retracted: the best retracted one');
    assert.equal(chooseLatest([], []), null);
    assert.equal(retractionSource(['v1.0.0', 'v1.2.0-rc.1', 'v1.1.0']), 'v1.1.0', 'the latest release, not a newer prerelease');
    assert.equal(retractionSource(['v1.2.0-rc.1', 'v1.2.0-beta']), 'v1.2.0-rc.1');
    assert.equal(retractionSource(['v1.0.0', 'v1.0.1-0.20240101000000-abcdefabcdef']), 'v1.0.0');
  });
});

describe('module zip file rules', () => {
  it('omits vendored packages as x/mod does (including its nested-vendor quirk)', () => {
    assert.ok(!isVendoredPackage('vendor/modules.txt', false));
    assert.ok(isVendoredPackage('vendor/modules.txt', true), 'go 1.24+: modules.txt too');
    assert.ok(isVendoredPackage('vendor/example.com/x/x.go', false));
    assert.ok(isVendoredPackage('sub/vendor/sub.txt', false));
    assert.ok(isVendoredPackage('pkg/vendor/vendor.go', false), 'golang.org/issue/37397');
    assert.ok(!isVendoredPackage('vendored/x.go', false));
    assert.ok(!isVendoredPackage('a.go', false));
  });
  it('finds duplicates and case-fold collisions, also through parent directories', () => {
    const c = new CollisionChecker();
    assert.equal(c.check('a/b.go', false), null);
    assert.equal(c.check('a/c.go', false), null, 'the same parent directory twice is fine');
    assert.match(c.check('a/b.go', false) ?? '', /multiple entries for file "a\/b.go"/);
    assert.match(c.check('A/d.go', false) ?? '', /case-insensitive file name collision: "a" and "A"/);
    assert.match(c.check('a', false) ?? '', /entry "a" is both a file and a directory/);
    assert.match(c.check('Ä.go', false) ?? 'none', /none/);
    assert.match(c.check('ä.go', false) ?? '', /case-insensitive file name collision: "Ä.go" and "ä.go"/, 'folding is Unicode, not just ASCII');
  });
});
