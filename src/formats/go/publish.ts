/**
 * Publishing a module version to a hosted Go repository: the uploaded zip is streamed into the blob store
 * (capped at the spec's 500 MiB), checked by the module-zip rules, its go.mod matched against the module path,
 * then `.zip`, `.mod` and `.info` are bound in one transaction — a version appears whole or not at all. Versions
 * are immutable: a second upload of the same version is refused with 409, even with identical bytes (go.sum pins
 * the first one forever), and of two racing uploads on any nodes exactly one wins.
 */
import { Readable } from 'node:stream';
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { getAsset } from '../../meta/assets.ts';
import { storeAsset } from '../../repos/content.ts';
import { GranaryError } from '../../server/errors.ts';
import { checkModuleVersion, type ModuleVersion } from './module.ts';
import { parseModFile } from './modfile.ts';
import { assetPath } from './hosted.ts';
import { checkModuleZip } from './zip-check.ts';
import { MAX_ZIP_FILE } from './zip-rules.ts';
import { CONTENT_TYPES } from './source.ts';
import { build } from './semver.ts';

export interface PublishInput {
  mv: ModuleVersion;
  data: Readable;
  expectedSize?: number;
  signal?: AbortSignal;
  actor: string | null;
}

export interface Published {
  module: string;
  version: string;
  time: string;
  digest: string;
  size: number;
  repository: string;
}

/** Publishes of one version in this process run one at a time, so two racing uploads cannot both win. */
const inFlight = new Set<string>();

const conflict = (mv: ModuleVersion, repo: RepositoryRecord) =>
  new GranaryError('CONFLICT', `${mv.path}@${mv.version} already exists in ${repo.name}; module versions are immutable, publish a new version`);

export async function publish(s: Services, repo: RepositoryRecord, i: PublishInput): Promise<Published> {
  const { mv } = i;
  checkModuleVersion(mv.path, mv.version);
  const zipPath = assetPath(mv, 'zip');
  const key = `${repo.id}\0${zipPath}`;
  if (inFlight.has(key)) throw new GranaryError('CONFLICT', `${mv.path}@${mv.version} is being published to ${repo.name} right now`);
  if (await getAsset(s.meta.db, repo.id, zipPath)) throw conflict(mv, repo);
  inFlight.add(key);
  try {
    const time = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const derived: { path: string; digest: string; size: number; mediaType: string }[] = [];
    const { asset } = await storeAsset(
      s,
      repo,
      {
        path: zipPath,
        data: i.data,
        mediaType: CONTENT_TYPES.zip,
        expectedSize: i.expectedSize,
        signal: i.signal,
        maxBytes: MAX_ZIP_FILE,
        metadata: { module: mv.path, version: mv.version, time },
        // Another node may publish the same version at the same moment: the database decides, and the loser's
        // `.mod` and `.info` go down with its zip (they are bound in the same transaction).
        ifAbsent: true,
        siblings: () => derived,
        enrich: async (blob) => {
          const report = await checkModuleZip((start, end) => s.blobs.open(blob.digest, { range: { start, end } }), blob.size, mv.path, mv.version);
          const mod = goModFor(mv, report.goMod);
          const info = Buffer.from(JSON.stringify({ Version: mv.version, Time: time }) + '\n');
          for (const [ext, bytes] of [['mod', mod], ['info', info]] as const) {
            const b = await s.blobs.put(Readable.from([bytes]), { expectedSize: bytes.length });
            derived.push({ path: assetPath(mv, ext), digest: b.digest, size: b.size, mediaType: CONTENT_TYPES[ext] });
          }
          return { files: report.files, uncompressedSize: report.uncompressed };
        },
      },
      i.actor,
    );
    return { module: mv.path, version: mv.version, time, digest: asset.digest, size: asset.size, repository: repo.name };
  } finally {
    inFlight.delete(key);
  }
}

/**
 * The `.mod` of a version: its go.mod, which must declare this very module path (with its /vN suffix). A
 * +incompatible version is one without a go.mod (that is what makes it incompatible); its `.mod` is synthesized
 * as the go command does: `module <path>`.
 */
function goModFor(mv: ModuleVersion, goMod: Buffer | null): Buffer {
  const bad = (why: string) => new GranaryError('UNPROCESSABLE', `invalid module zip for ${mv.path}@${mv.version}:\n\t${why}`);
  if (build(mv.version) === '+incompatible') {
    if (goMod) throw bad('go.mod: +incompatible versions must not have a go.mod file (a module with go.mod at major version 2 or higher needs the /vN path suffix)');
    return Buffer.from(`module ${mv.path}\n`);
  }
  if (!goMod) throw bad(`go.mod missing: the zip needs ${mv.path}@${mv.version}/go.mod`);
  let declared: string | null;
  try {
    declared = parseModFile(goMod.toString('utf8')).module;
  } catch (e) {
    throw bad((e as Error).message);
  }
  if (declared === null) throw bad('go.mod has no module statement');
  if (declared !== mv.path) {
    throw bad(`go.mod declares module path ${JSON.stringify(declared)}, but the zip is published as ${JSON.stringify(mv.path)}`);
  }
  return goMod;
}
