/**
 * The little of go.mod a proxy needs: the `module` path (to check a published zip is the module it claims to
 * be), the `go` version (module-zip rules changed in 1.24) and `retract` directives (which `@latest` must skip).
 * Follows golang.org/x/mod/modfile's lexical rules: `//` comments, quoted or bare tokens, `( … )` blocks.
 */
import { compareSemver, isValidSemver } from './semver.ts';

export interface Retraction {
  low: string;
  high: string;
}

export interface ModFile {
  module: string | null;
  go: string | null;
  retract: Retraction[];
}

/** Splits a line into tokens: bare words, interpreted "…" strings and raw `…` strings; comments dropped. */
function tokens(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i];
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (line.startsWith('//', i)) break;
    if (c === '"' || c === '`') {
      const end = c === '`' ? line.indexOf('`', i + 1) : findQuoteEnd(line, i + 1);
      if (end < 0) throw new Error(`unterminated string in ${JSON.stringify(line)}`);
      const raw = line.slice(i, end + 1);
      out.push(c === '`' ? raw.slice(1, -1) : (JSON.parse(raw) as string));
      i = end + 1;
      continue;
    }
    if ('()[],'.includes(c)) {
      out.push(c);
      i++;
      continue;
    }
    let j = i;
    while (j < line.length && !' \t\r()[],"`'.includes(line[j]) && !line.startsWith('//', j)) j++;
    out.push(line.slice(i, j));
    i = j;
  }
  return out;
}

function findQuoteEnd(line: string, from: number): number {
  for (let i = from; i < line.length; i++) {
    if (line[i] === '\\') i++;
    else if (line[i] === '"') return i;
  }
  return -1;
}

function retraction(args: string[]): Retraction | null {
  if (args.length === 1 && isValidSemver(args[0])) return { low: args[0], high: args[0] };
  // `[low, high]` tokenizes to "[", low, ",", high, "]"
  if (args.length === 5 && args[0] === '[' && args[2] === ',' && args[4] === ']' && isValidSemver(args[1]) && isValidSemver(args[3])) {
    return { low: args[1], high: args[3] };
  }
  return null;
}

/** Parses go.mod text; throws with a line number on text the go command would not read. */
export function parseModFile(text: string): ModFile {
  const mf: ModFile = { module: null, go: null, retract: [] };
  let block: string | null = null;
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    let toks: string[];
    try {
      toks = tokens(lines[n]);
    } catch (e) {
      throw new Error(`go.mod:${n + 1}: ${(e as Error).message}`);
    }
    if (!toks.length) continue;
    if (block !== null) {
      if (toks[0] === ')') {
        block = null;
        continue;
      }
      apply(mf, block, toks, n + 1);
      continue;
    }
    if (toks.length === 2 && toks[1] === '(') {
      block = toks[0];
      continue;
    }
    apply(mf, toks[0], toks.slice(1), n + 1);
  }
  if (block !== null) throw new Error(`go.mod: unterminated ${block} block`);
  return mf;
}

function apply(mf: ModFile, verb: string, args: string[], line: number): void {
  if (verb === 'module') {
    if (args.length !== 1) throw new Error(`go.mod:${line}: usage: module module/path`);
    if (mf.module !== null) throw new Error(`go.mod:${line}: repeated module statement`);
    mf.module = args[0];
  } else if (verb === 'go') {
    if (args.length === 1) mf.go = args[0];
  } else if (verb === 'retract') {
    const r = retraction(args);
    if (!r) throw new Error(`go.mod:${line}: invalid retract: expected a version or a [low, high] interval`);
    mf.retract.push(r);
  }
}

export function isRetracted(version: string, retract: readonly Retraction[]): boolean {
  return retract.some((r) => compareSemver(r.low, version) <= 0 && compareSemver(version, r.high) <= 0);
}

/** The go directive is at least `major.minor` (module-zip rules differ from Go 1.24 on). */
export function goAtLeast(go: string | null, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(go ?? '');
  if (!m) return false;
  return Number(m[1]) > major || (Number(m[1]) === major && Number(m[2]) >= minor);
}
