/**
 * Maven repositories at /maven/<repo>/ (layout: https://maven.apache.org/repositories/layout.html):
 *   GET|HEAD /maven/<repo>/<path>      files, computed .md5/.sha1/.sha256/.sha512, generated maven-metadata.xml,
 *                                      an HTML index for folders
 *   PUT      /maven/<repo>/<path>      deploy (hosted, or a group's writeMember); checksums verified, not stored
 *   DELETE   /maven/<repo>/<path>[/]   a file, or everything under a folder
 * Kinds: hosted, proxy (members.ts, over src/repos/proxy) and group. Errors are plain text, with the message also in the HTTP
 * reason phrase, because Maven prints only the status line of a failed transfer.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FormatPlugin } from '../types.ts';
import type { Services } from '../../server/services.ts';
import { FORMAT_CONTRACT_VERSION } from '../types.ts';
import { GranaryError } from '../../server/errors.ts';
import { normalizeError } from '../../server/normalize.ts';
import { removeAsset, writeTarget } from '../../repos/content.ts';
import { actorOf } from '../../auth/types.ts';
import { getAsset } from '../../meta/assets.ts';
import { deploy } from './deploy.ts';
import { read } from './read.ts';
import { assetsIn } from './generate.ts';
import { mavenOptionsSchema } from './options.ts';
import { isMetadataPath, splitChecksum, validatePath } from './path.ts';

type Req = FastifyRequest<{ Params: { repo: string; '*': string } }>;

/** A reason phrase may hold printable ASCII only; Maven shows it as the cause of a failed transfer. */
const reasonPhrase = (s: string) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 300);

async function routes(app: FastifyInstance, s: Services): Promise<void> {
  app.setErrorHandler((error, req, reply) => {
    const err = normalizeError(error);
    if (err.status >= 500) req.log.error({ err: error }, 'maven request failed');
    reply.headers(err.headers);
    if (err.status === 401) reply.header('www-authenticate', 'Basic realm="Granary"');
    reply.raw.statusMessage = reasonPhrase(err.message);
    return reply.code(err.status).type('text/plain; charset=utf-8').send(`${err.status} ${err.code}: ${err.message}\n`);
  });

  const cfg = (action: 'read' | 'write' | 'delete') => ({ action, repoParam: 'repo', format: 'maven' });

  const get = async (req: Req, reply: FastifyReply) => {
    const { path, dir } = validatePath(req.params['*']);
    return read(s, req, reply, req.repository!, path, dir);
  };
  app.get('/:repo/*', { config: cfg('read') }, get);
  app.head('/:repo/*', { config: cfg('read') }, get);
  // The repository root without its slash: send browsers and tools to the folder URL.
  const root = async (req: Req, reply: FastifyReply) => reply.redirect(`${app.prefix}/${req.params.repo}/`, 301);
  app.get('/:repo', { config: cfg('read') }, root);
  app.head('/:repo', { config: cfg('read') }, root);

  // The handler sends 100 Continue itself, after refusing what it can refuse before the bytes (a redeploy).
  app.put('/:repo/*', { config: { ...cfg('write'), deferContinue: true } }, async (req: Req, reply) => {
    const { path, dir } = validatePath(req.params['*']);
    if (dir || !path) throw new GranaryError('BAD_REQUEST', 'PUT needs a file path, not a folder');
    const target = await writeTarget(s, req.repository!, req.principal);
    return deploy(s, req, reply, target, path);
  });

  app.delete('/:repo/*', { config: cfg('delete') }, async (req: Req, reply) => {
    const repo = req.repository!;
    if (repo.kind !== 'hosted') throw new GranaryError('METHOD_NOT_ALLOWED', `cannot delete from ${repo.kind} repository ${repo.name}`);
    const { path, dir } = validatePath(req.params['*']);
    if (!path) throw new GranaryError('BAD_REQUEST', 'refusing to delete a whole repository; delete the repository instead');
    if (splitChecksum(path)) throw new GranaryError('METHOD_NOT_ALLOWED', 'checksums are computed from the stored file; delete the file itself');
    const actor = actorOf(req.principal);
    if (dir || !(await getAsset(s.meta.db, repo.id, path))) {
      if (isMetadataPath(path)) throw new GranaryError('METHOD_NOT_ALLOWED', `${path} is generated from the stored files; delete those instead`);
      // A folder (a version, an artifact): everything below it.
      const below = await assetsIn(s, repo, `${path}/`);
      if (!below.length) throw new GranaryError('NOT_FOUND', `${path} not found in ${repo.name}`);
      for (const a of below) await removeAsset(s, repo, a.path, actor);
      return reply.code(204).send();
    }
    await removeAsset(s, repo, path, actor);
    return reply.code(204).send();
  });
}

export const mavenFormat: FormatPlugin = {
  name: 'maven',
  contract: FORMAT_CONTRACT_VERSION,
  kinds: ['hosted', 'proxy', 'group'],
  optionsSchema: mavenOptionsSchema,
  register: routes,
};
