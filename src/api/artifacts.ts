/**
 * /api/v1 typed-artifact routes: "latest compatible" resolution over asset metadata, and the trusted public keys
 * of a generic repository (whose signatures its signature policy accepts). Removing a key re-checks what it had
 * signed against the remaining keys and reports the outcome; assets are never deleted or changed by it.
 */
import type { FastifyInstance } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Services } from '../server/services.ts';
import type { RepositoryRecord } from '../meta/repos.ts';
import { listAssets, type Asset } from '../meta/assets.ts';
import { withTx } from '../meta/db.ts';
import { deleteTrustedKey, listTrustedKeys, putTrustedKey, type TrustedKeyRecord } from '../meta/trusted-keys.ts';
import { readOrder } from '../repos/content.ts';
import { byLatest } from '../artifacts/latest.ts';
import { signaturePolicy, trustedKeysOf } from '../artifacts/upload.ts';
import { checkUpload, isTrustError, parsePublicKey, TRUST_ALGORITHMS, type TrustAlgorithm } from '../trust/index.ts';
import { actorOf } from '../auth/types.ts';
import { GranaryError } from '../server/errors.ts';
import { errors } from './schemas.ts';

const NameParam = Type.Object({ name: Type.String() });
const KeyParams = Type.Object({ name: Type.String(), id: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' }) });
const TrustedKeyJson = Type.Object({ id: Type.String(), algorithm: Type.String(), fingerprint: Type.String(), publicKey: Type.String(), createdAt: Type.String() });
const keyJson = (k: TrustedKeyRecord) => ({ id: k.id, algorithm: k.algorithm, fingerprint: k.fingerprint, publicKey: k.publicKey, createdAt: k.createdAt });
const RecheckJson = Type.Object({
  repository: Type.String(),
  path: Type.String(),
  digest: Type.String(),
  stillVerified: Type.Boolean(),
  verifiedBy: Type.Union([Type.String(), Type.Null()]),
  reason: Type.Optional(Type.String()),
});

/** Every asset of these repositories matching the metadata filter (scans in pages of 1000). */
async function allMatching(s: Services, repos: RepositoryRecord[], metadata: Record<string, string>): Promise<Asset[]> {
  const out: Asset[] = [];
  let afterId = 0;
  for (;;) {
    const page = await listAssets(s.meta.db, { repoIds: repos.map((r) => r.id), metadata, afterId, limit: 1000 });
    out.push(...page);
    if (page.length < 1000) return out;
    afterId = page[page.length - 1].id;
  }
}

function metaQuery(query: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(query)) {
    if (!k.startsWith('meta.')) throw new GranaryError('VALIDATION', `unknown query parameter ${k}; constraints are meta.<key>=<value>`);
    if (k.length === 5) throw new GranaryError('VALIDATION', 'metadata constraint needs a key: meta.<key>=<value>');
    out[k.slice(5)] = String(v);
  }
  return out;
}

export function artifactRoutes(s: Services) {
  return async (app: FastifyInstance) => {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();

    r.get(
      '/repositories/:name/latest',
      {
        schema: {
          tags: ['assets'],
          summary: 'The latest compatible asset for metadata constraints (meta.<key>=<value>): highest abi, then semver-newest version, then newest upload',
          params: NameParam,
          querystring: Type.Object({}, { additionalProperties: Type.String() }),
          response: { 200: Type.Ref('Asset'), ...errors(400, 401, 403, 404) },
        },
        config: { action: 'read', repoParam: 'name' },
      },
      async (req) => {
        const repos = await readOrder(s, req.repository!, req.principal);
        const names = new Map(repos.map((x) => [x.id, x.name]));
        const found = (await allMatching(s, repos, metaQuery(req.query as Record<string, unknown>))).sort(byLatest);
        const a = found[0];
        if (!a) throw new GranaryError('NOT_FOUND', `no asset in ${req.repository!.name} matches these constraints`);
        return { repository: names.get(a.repoId)!, path: a.path, digest: a.digest, size: a.size, mediaType: a.mediaType, metadata: a.metadata, createdAt: a.createdAt, updatedAt: a.updatedAt };
      },
    );

    const keyCfg = { action: 'admin', repoParam: 'name', format: 'generic' } as const;

    r.get(
      '/repositories/:name/keys',
      {
        schema: { tags: ['trust'], summary: 'Trusted public keys of a generic repository (repository admin)', params: NameParam, response: { 200: Type.Object({ keys: Type.Array(TrustedKeyJson) }), ...errors(401, 403, 404) } },
        config: keyCfg,
      },
      async (req) => ({ keys: (await listTrustedKeys(s.meta.db, req.repository!.id)).map(keyJson) }),
    );

    r.put(
      '/repositories/:name/keys/:id',
      {
        schema: {
          tags: ['trust'],
          summary: 'Add or replace a trusted public key (PEM SPKI, DER/hex/base64; secp256k1, P-256 or Ed25519) (repository admin)',
          params: KeyParams,
          body: Type.Object(
            { publicKey: Type.String({ minLength: 1, maxLength: 8192 }), algorithm: Type.Optional(Type.Union(TRUST_ALGORITHMS.map((a) => Type.Literal(a)))) },
            { additionalProperties: false },
          ),
          response: { 200: TrustedKeyJson, 201: TrustedKeyJson, ...errors(400, 401, 403, 404) },
        },
        config: keyCfg,
      },
      async (req, reply) => {
        if (req.repository!.kind !== 'hosted') throw new GranaryError('METHOD_NOT_ALLOWED', 'trusted keys belong to hosted repositories');
        let info;
        try {
          info = parsePublicKey(req.body.publicKey, req.body.algorithm ? { algorithm: req.body.algorithm as TrustAlgorithm } : {});
        } catch (e) {
          if (isTrustError(e)) throw new GranaryError('VALIDATION', e.message, { cause: e });
          throw e;
        }
        const { key, replaced } = await withTx(s.meta.db, (tx) =>
          putTrustedKey(tx, req.repository!, { id: req.params.id, algorithm: info.algorithm, fingerprint: info.fingerprint, publicKey: info.pem }, actorOf(req.principal)),
        );
        return reply.code(replaced ? 200 : 201).send(keyJson(key));
      },
    );

    r.delete(
      '/repositories/:name/keys/:id',
      {
        schema: {
          tags: ['trust'],
          summary: 'Remove a trusted key; reports the assets it had verified and whether another trusted key verifies them (nothing is deleted)',
          params: KeyParams,
          response: { 200: Type.Object({ removed: Type.String(), assets: Type.Array(RecheckJson) }), ...errors(401, 403, 404) },
        },
        config: keyCfg,
      },
      async (req) => {
        const repo = req.repository!;
        const removed = await withTx(s.meta.db, (tx) => deleteTrustedKey(tx, repo, req.params.id, actorOf(req.principal)));
        if (!removed) throw new GranaryError('NOT_FOUND', `repository ${repo.name} has no trusted key ${req.params.id}`);
        const remaining = await trustedKeysOf(s, repo);
        const policy = { ...signaturePolicy(repo), mode: 'optional' as const };
        const assets = [];
        for (const a of await allMatching(s, [repo], { signature_key: req.params.id })) {
          const sig = typeof a.metadata.signature === 'string' ? a.metadata.signature : null;
          const c = remaining.length && sig ? await checkUpload(policy, remaining, { digest: a.digest }, sig) : null;
          const ok = c?.verified === true;
          assets.push({
            repository: repo.name,
            path: a.path,
            digest: a.digest,
            stillVerified: ok,
            verifiedBy: ok ? c!.keyId! : null,
            ...(ok ? {} : { reason: c?.reason ?? 'no other trusted key remains' }),
          });
        }
        return { removed: req.params.id, assets };
      },
    );
  };
}
