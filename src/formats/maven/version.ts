/**
 * Maven version ordering, after Maven's ComparableVersion (maven-artifact): versions split into numbers and
 * qualifiers at '.', '-' and digit/letter changes; trailing zeros and "null" qualifiers (ga, final, release)
 * are ignored; known qualifiers order alpha < beta < milestone < rc < snapshot < (release) < sp; unknown
 * qualifiers sort after those, alphabetically. Used to order `<versions>` and pick `latest` / `release`.
 */

const QUALIFIERS = ['alpha', 'beta', 'milestone', 'rc', 'snapshot', '', 'sp'];
const ALIASES: Record<string, string> = { a: 'alpha', b: 'beta', m: 'milestone', cr: 'rc', ga: '', final: '', release: '' };

type Item = { n: bigint } | { q: string };

function qualifierRank(q: string): string {
  const i = QUALIFIERS.indexOf(q);
  // Known qualifiers sort by position; unknown ones after all of them, alphabetically.
  return i >= 0 ? String(i) : `${QUALIFIERS.length}-${q}`;
}

function items(version: string): Item[] {
  const parts = version.toLowerCase().split(/[.-]/).flatMap((t) => t.match(/\d+|\D+/g) ?? ['']);
  const out: Item[] = [];
  parts.forEach((part, i) => {
    if (/^\d+$/.test(part)) return out.push({ n: BigInt(part) });
    // "a1", "b2", "m3" mean alpha-1, beta-2, milestone-3 only when a number follows the letter.
    const single = part.length === 1 && /^\d/.test(parts[i + 1] ?? '');
    return out.push({ q: part.length > 1 || single ? (ALIASES[part] ?? part) : part });
  });
  // Trailing zeros and release qualifiers carry no meaning: 1.0 == 1 == 1.0.0 == 1-ga.
  while (out.length > 1) {
    const last = out[out.length - 1];
    if (('n' in last && last.n === 0n) || ('q' in last && last.q === '')) out.pop();
    else break;
  }
  return out;
}

function compareItem(a: Item | undefined, b: Item | undefined): number {
  if (a === undefined && b === undefined) return 0;
  // A missing item compares like 0 against a number, like the release qualifier against a qualifier.
  if (a === undefined) return -compareItem(b, undefined);
  if (b === undefined) {
    if ('n' in a) return a.n === 0n ? 0 : 1;
    return qualifierRank(a.q) < qualifierRank('') ? -1 : qualifierRank(a.q) === qualifierRank('') ? 0 : 1;
  }
  if ('n' in a && 'n' in b) return a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
  if ('n' in a) return 1; // a number is newer than a qualifier (1.1 > 1-rc)
  if ('n' in b) return -1;
  const ra = qualifierRank(a.q);
  const rb = qualifierRank(b.q);
  return ra < rb ? -1 : ra > rb ? 1 : 0;
}

export function compareVersions(a: string, b: string): number {
  const ia = items(a);
  const ib = items(b);
  for (let i = 0; i < Math.max(ia.length, ib.length); i++) {
    const c = compareItem(ia[i], ib[i]);
    if (c !== 0) return c;
  }
  return 0;
}

export function sortVersions(versions: Iterable<string>): string[] {
  return [...new Set(versions)].sort(compareVersions);
}
