/**
 * The `maven-metadata.xml` model (https://maven.apache.org/repositories/metadata.html): parse (validating what
 * clients and upstreams send), serialise, and merge several into one (groups). The server builds these from
 * what is stored (see generate.ts); nothing here touches storage.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { GranaryError } from '../../server/errors.ts';
import { sortVersions } from './version.ts';
import { isSnapshotVersion } from './path.ts';

export interface SnapshotVersion {
  classifier: string;
  extension: string;
  value: string;
  /** yyyyMMddHHmmss */
  updated: string;
}

export interface PluginEntry {
  name?: string;
  prefix: string;
  artifactId: string;
}

export interface MavenMetadata {
  groupId?: string;
  artifactId?: string;
  version?: string;
  versioning?: {
    latest?: string;
    release?: string;
    versions: string[];
    lastUpdated?: string;
    snapshot?: { timestamp?: string; buildNumber?: number; localCopy?: boolean };
    snapshotVersions?: SnapshotVersion[];
  };
  plugins?: PluginEntry[];
}

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: true,
  isArray: (_name, jpath) =>
    ['metadata.versioning.versions.version', 'metadata.versioning.snapshotVersions.snapshotVersion', 'metadata.plugins.plugin'].includes(String(jpath)),
  processEntities: true,
});

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Parses and validates; a malformed document or one whose root is not `<metadata>` is a 400. */
export function parseMetadata(xml: string): MavenMetadata {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    throw new GranaryError('BAD_REQUEST', `maven-metadata.xml is not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`);
  }
  const doc = parser.parse(xml) as Obj;
  if (!('metadata' in doc)) throw new GranaryError('BAD_REQUEST', 'maven-metadata.xml has no <metadata> root element');
  const m = obj(doc.metadata);
  const out: MavenMetadata = { groupId: str(m.groupId), artifactId: str(m.artifactId), version: str(m.version) };
  if ('versioning' in m) {
    const v = obj(m.versioning);
    const snap = obj(v.snapshot);
    out.versioning = {
      latest: str(v.latest),
      release: str(v.release),
      versions: arr(obj(v.versions).version).map(str).filter((x): x is string => !!x),
      lastUpdated: str(v.lastUpdated),
      snapshot:
        'snapshot' in v
          ? {
              timestamp: str(snap.timestamp),
              buildNumber: str(snap.buildNumber) ? Number(snap.buildNumber) : undefined,
              localCopy: str(snap.localCopy) === 'true' ? true : undefined,
            }
          : undefined,
      snapshotVersions: arr(obj(v.snapshotVersions).snapshotVersion).map((x) => {
        const e = obj(x);
        return { classifier: str(e.classifier) ?? '', extension: str(e.extension) ?? '', value: str(e.value) ?? '', updated: str(e.updated) ?? '' };
      }),
    };
  }
  if ('plugins' in m) {
    out.plugins = arr(obj(m.plugins).plugin)
      .map((x) => {
        const p = obj(x);
        return { name: str(p.name), prefix: str(p.prefix) ?? '', artifactId: str(p.artifactId) ?? '' };
      })
      .filter((p) => p.prefix && p.artifactId);
  }
  return out;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const el = (indent: string, name: string, v: string | number | undefined) => (v === undefined ? '' : `${indent}<${name}>${esc(String(v))}</${name}>\n`);

/** Serialises in the element order Maven itself writes. The same model always gives the same bytes. */
export function serializeMetadata(m: MavenMetadata): string {
  const snapshotLevel = !!m.versioning?.snapshotVersions?.length;
  let x = `<?xml version="1.0" encoding="UTF-8"?>\n<metadata${snapshotLevel ? ' modelVersion="1.1.0"' : ''}>\n`;
  x += el('  ', 'groupId', m.groupId) + el('  ', 'artifactId', m.artifactId) + el('  ', 'version', m.version);
  const v = m.versioning;
  if (v) {
    x += '  <versioning>\n';
    x += el('    ', 'latest', v.latest) + el('    ', 'release', v.release);
    if (v.snapshot) {
      x += '    <snapshot>\n';
      x += el('      ', 'timestamp', v.snapshot.timestamp) + el('      ', 'buildNumber', v.snapshot.buildNumber);
      if (v.snapshot.localCopy) x += el('      ', 'localCopy', 'true');
      x += '    </snapshot>\n';
    }
    if (v.versions.length) x += `    <versions>\n${v.versions.map((s) => el('      ', 'version', s)).join('')}    </versions>\n`;
    x += el('    ', 'lastUpdated', v.lastUpdated);
    if (v.snapshotVersions?.length) {
      x += '    <snapshotVersions>\n';
      for (const s of v.snapshotVersions) {
        x += '      <snapshotVersion>\n';
        x += el('        ', 'classifier', s.classifier || undefined) + el('        ', 'extension', s.extension);
        x += el('        ', 'value', s.value) + el('        ', 'updated', s.updated);
        x += '      </snapshotVersion>\n';
      }
      x += '    </snapshotVersions>\n';
    }
    x += '  </versioning>\n';
  }
  if (m.plugins?.length) {
    x += '  <plugins>\n';
    for (const p of m.plugins) x += `    <plugin>\n${el('      ', 'name', p.name)}${el('      ', 'prefix', p.prefix)}${el('      ', 'artifactId', p.artifactId)}    </plugin>\n`;
    x += '  </plugins>\n';
  }
  return x + '</metadata>\n';
}

const maxStr = (a: string | undefined, b: string | undefined) => (a === undefined ? b : b === undefined ? a : a > b ? a : b);

/** Recomputes `latest` and `release` from the version list (what the server and a group merge both need). */
export function withLatest(versions: string[]): { versions: string[]; latest?: string; release?: string } {
  const sorted = sortVersions(versions);
  const releases = sorted.filter((v) => !isSnapshotVersion(v));
  return { versions: sorted, latest: sorted.at(-1), release: releases.at(-1) };
}

/**
 * Merges documents from several repositories (a group's members, in order): versions are united and
 * latest/release recomputed; for SNAPSHOT version metadata the newest build wins per classifier/extension;
 * plugin prefixes are united, the first member winning a prefix.
 */
export function mergeMetadata(docs: MavenMetadata[]): MavenMetadata | null {
  if (!docs.length) return null;
  if (docs.length === 1) return docs[0];
  const out: MavenMetadata = {
    groupId: docs.find((d) => d.groupId)?.groupId,
    artifactId: docs.find((d) => d.artifactId)?.artifactId,
    version: docs.find((d) => d.version)?.version,
  };
  const withV = docs.filter((d) => d.versioning);
  if (withV.length) {
    let lastUpdated: string | undefined;
    let snapshot: { timestamp?: string; buildNumber?: number } | undefined;
    const versions: string[] = [];
    const snaps = new Map<string, SnapshotVersion>();
    for (const d of withV) {
      const v = d.versioning!;
      versions.push(...v.versions);
      lastUpdated = maxStr(lastUpdated, v.lastUpdated);
      if (v.snapshot?.timestamp && (!snapshot?.timestamp || `${v.snapshot.timestamp}` > snapshot.timestamp)) snapshot = v.snapshot;
      for (const s of v.snapshotVersions ?? []) {
        const key = `${s.classifier}:${s.extension}`;
        const have = snaps.get(key);
        if (!have || s.updated > have.updated) snaps.set(key, s);
      }
    }
    out.versioning = {
      ...withLatest(versions),
      lastUpdated,
      snapshot: snapshot ?? withV.find((d) => d.versioning!.snapshot)?.versioning!.snapshot,
      snapshotVersions: [...snaps.values()],
    };
    if (!out.versioning.versions.length) {
      out.versioning.latest = undefined;
      out.versioning.release = undefined;
    }
  }
  const plugins = new Map<string, PluginEntry>();
  for (const d of docs) for (const p of d.plugins ?? []) if (!plugins.has(p.prefix)) plugins.set(p.prefix, p);
  if (plugins.size) out.plugins = [...plugins.values()];
  return out;
}
