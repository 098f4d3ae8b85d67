/** Repository options of Maven repositories, validated at create/update by the repository service. */
import { Type } from '@sinclair/typebox';
import type { RepositoryRecord } from '../../meta/repos.ts';

export const mavenOptionsSchema = Type.Object(
  {
    /** Which versions the repository takes: releases only, SNAPSHOTs only, or both (default). */
    policy: Type.Optional(Type.Union([Type.Literal('release'), Type.Literal('snapshot'), Type.Literal('mixed')])),
    /** Allow overwriting a released file (default false: a release is immutable, as Maven Central's). */
    allowRedeploy: Type.Optional(Type.Boolean()),
    /** Keep only the newest N timestamped builds of each SNAPSHOT version (default: keep all). */
    snapshotRetention: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

export interface MavenOptions {
  policy: 'release' | 'snapshot' | 'mixed';
  allowRedeploy: boolean;
  snapshotRetention: number | null;
}

export function mavenOptions(repo: RepositoryRecord): MavenOptions {
  const o = (repo.config.options ?? {}) as Partial<MavenOptions>;
  return {
    policy: o.policy ?? 'mixed',
    allowRedeploy: o.allowRedeploy ?? false,
    snapshotRetention: o.snapshotRetention ?? null,
  };
}
