/** Shared pieces of the replication tests: waiting for a condition, and the primary's public key on disk. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, setGlobalDispatcher } from 'undici';

/**
 * The tests' own fetch calls use no keep-alive. A server closed just after answering would otherwise wait out
 * its keep-alive timeout (72 s) for the test's idle connection: the response was still finishing when the close
 * looked for idle connections to end, and nothing looks again.
 */
export function noKeepAlive(): void {
  setGlobalDispatcher(new Agent({ pipelining: 0 }));
}

/**
 * Polls `check` until it returns a value other than undefined; fails with `what` and the last value seen after
 * `timeoutMs` (with what `describe` reports then). A bound on waiting for a background loop, not an assertion about
 * speed.
 */
export async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000, describe?: () => Promise<string>): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}${describe ? `; last seen: ${await describe().catch(String)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Fetches a node's feed public key (as admin) and writes it where `--primary-key` can read it. */
export async function savePublicKey(url: string, token: string, dir: string, name = 'primary.pub.pem'): Promise<string> {
  const res = await fetch(`${url}/api/v1/replication/key`, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) throw new Error(`GET /api/v1/replication/key: ${res.status} ${await res.text()}`);
  const { publicKey } = (await res.json()) as { publicKey: string };
  const path = join(dir, name);
  await writeFile(path, publicKey);
  return path;
}

export async function getJson<T>(url: string, token: string | null): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}
