/**
 * Folder browsing, as Maven repositories conventionally offer it: GET on a folder lists its children as an
 * HTML page of links (what people and tools such as `wget -r` expect). Children come from what the
 * repository — or, for a group, each member the caller may read — stores under the folder.
 */
import type { FastifyRequest } from 'fastify';
import type { Services } from '../../server/services.ts';
import type { RepositoryRecord } from '../../meta/repos.ts';
import { readOrder } from '../../repos/content.ts';
import { assetsIn } from './generate.ts';

export interface DirEntry {
  name: string;
  dir: boolean;
  size?: number;
  modified?: string;
}

/** Children of folder `path` ('' = root); empty when nothing is stored below it. */
export async function listDirectory(s: Services, repo: RepositoryRecord, path: string, req: FastifyRequest): Promise<DirEntry[]> {
  const prefix = path ? `${path}/` : '';
  const entries = new Map<string, DirEntry>();
  for (const m of await readOrder(s, repo, req.principal)) {
    for (const a of await assetsIn(s, m, prefix)) {
      const rest = a.path.slice(prefix.length);
      const slash = rest.indexOf('/');
      const name = slash < 0 ? rest : rest.slice(0, slash);
      if (!name || entries.has(name)) continue;
      entries.set(name, slash < 0 ? { name, dir: false, size: a.size, modified: a.updatedAt } : { name, dir: true });
    }
  }
  return [...entries.values()].sort((a, b) => (a.dir === b.dir ? a.name.localeCompare(b.name) : a.dir ? -1 : 1));
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function renderIndex(base: string, entries: DirEntry[]): string {
  const rows = entries.map((e) => {
    const href = esc(base + encodeURIComponent(e.name) + (e.dir ? '/' : ''));
    const label = esc(e.name + (e.dir ? '/' : ''));
    const info = e.dir ? '' : `${e.modified ? esc(e.modified.slice(0, 19).replace('T', ' ')) : ''}  ${e.size ?? ''}`;
    return `<a href="${href}">${label}</a>${info ? `  ${info}` : ''}`;
  });
  const parent = base.split('/').length > 4 ? `<a href="${esc(base.replace(/[^/]+\/$/, ''))}">../</a>\n` : '';
  return `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Index of ${esc(base)}</title></head>\n<body><h1>Index of ${esc(base)}</h1>\n<pre>\n${parent}${rows.join('\n')}\n</pre></body></html>\n`;
}
