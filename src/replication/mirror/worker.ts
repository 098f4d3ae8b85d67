/**
 * One push-mirroring rule: follows the local event log of its repository and copies each matching tag (and each
 * referrer added later) to the remote registry, in log order. A failed copy is retried with exponential backoff
 * (capped) without moving on, so the remote never sees a later change before an earlier one; the position is
 * kept in `settings`, so a restart resumes where the rule stood (copies are idempotent either way).
 */
import picomatch from 'picomatch';
import { Counter, type Registry } from 'prom-client';
import type { Services } from '../../server/services.ts';
import { listEvents, type Event } from '../../meta/events.ts';
import { getSetting, setSetting } from '../../meta/settings.ts';
import { RegistryClient } from './registry-client.ts';
import { pushManifest, pushReferrers, type PushContext } from './push.ts';

export interface MirrorRule {
  name: string;
  direction: 'push' | 'pull';
  intervalSeconds: number;
  repository: string;
  url: string;
  prefix?: string;
  images: string[];
  tags: string[];
  username?: string;
  password?: string;
}

export interface MirrorStatus {
  name: string;
  repository: string;
  url: string;
  state: 'starting' | 'idle' | 'pushing' | 'retrying' | 'stopped';
  position: number;
  pushed: number;
  attempts: number;
  lastPushed: { image: string; ref: string; digest: string; at: string } | null;
  lastError: string | null;
}

const POLL_MS = 500;
const MAX_BACKOFF_MS = 60_000;
const REFERRER_PATH = /^(.+)\/_referrers\/(sha256:[0-9a-f]{64})\/(sha256:[0-9a-f]{64})$/;

export function mirrorMetrics(registry: Registry): Counter<'rule' | 'result'> {
  return new Counter({ name: 'granary_mirror_pushes_total', help: 'Mirror copies by rule and result (ok, error)', labelNames: ['rule', 'result'] as const, registers: [registry] });
}

export class MirrorWorker {
  readonly rule: MirrorRule;
  readonly status: MirrorStatus;
  readonly #s: Services;
  readonly #remote: RegistryClient;
  readonly #pushes: Counter<'rule' | 'result'>;
  readonly #images: (s: string) => boolean;
  readonly #tags: (s: string) => boolean;
  readonly #abort = new AbortController();
  #loop: Promise<void> | null = null;

  constructor(s: Services, rule: MirrorRule, pushes: Counter<'rule' | 'result'>) {
    this.#s = s;
    this.rule = rule;
    this.#pushes = pushes;
    this.#remote = new RegistryClient(rule.url, rule);
    this.#images = picomatch(rule.images.length ? rule.images : ['**']);
    this.#tags = picomatch(rule.tags.length ? rule.tags : ['**']);
    this.status = { name: rule.name, repository: rule.repository, url: rule.url, state: 'starting', position: 0, pushed: 0, attempts: 0, lastPushed: null, lastError: null };
  }

  get #key(): string {
    return `mirror.${this.rule.name}.position`;
  }

  start(): void {
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
    await this.#remote.close();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.#abort.signal;
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      // Removed again when the timer fires: a long-running loop must not pile up listeners on the signal.
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    this.status.position = Number((await getSetting(this.#s.meta.db, this.#key).catch(() => null)) ?? 0);
    while (!signal.aborted) {
      // The whole log, not only this repository's events: the position then says how far the rule has looked.
      const events = await listEvents(this.#s.meta.db, { since: this.status.position, limit: 500 }).catch(() => []);
      if (!events.length) {
        this.status.state = this.status.lastError ? this.status.state : 'idle';
        await this.#sleep(POLL_MS);
        continue;
      }
      for (const e of events) {
        if (signal.aborted) break;
        if (e.repo !== this.rule.repository) {
          this.status.position = e.seq;
          continue;
        }
        await this.#withRetry(e);
        this.status.position = e.seq;
        await setSetting(this.#s.meta.db, this.#key, String(e.seq)).catch(() => {});
      }
      await setSetting(this.#s.meta.db, this.#key, String(this.status.position)).catch(() => {});
    }
    this.status.state = 'stopped';
  }

  async #withRetry(e: Event): Promise<void> {
    let backoff = 500;
    for (;;) {
      if (this.#abort.signal.aborted) return;
      try {
        this.status.attempts++;
        if (await this.#copy(e)) {
          this.#pushes.inc({ rule: this.rule.name, result: 'ok' });
          this.status.pushed++;
        }
        this.status.lastError = null;
        this.status.attempts = 0;
        return;
      } catch (err) {
        const cause = (err as Error & { cause?: Error }).cause;
        this.status.lastError = `${(err as Error).message}${cause ? ` (${cause.message})` : ''}`;
        this.status.state = 'retrying';
        this.#pushes.inc({ rule: this.rule.name, result: 'error' });
        this.#s.log.warn({ rule: this.rule.name, seq: e.seq }, `mirror: ${this.status.lastError}; retrying in ${backoff} ms`);
        await this.#sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  }

  /** Copies what the event changed, if the rule covers it; false when there was nothing to copy. */
  async #copy(e: Event): Promise<boolean> {
    const repo = await this.#s.repos.get(this.rule.repository);
    if (!repo || repo.format !== 'oci') return false;
    let image: string;
    let run: (c: PushContext) => Promise<unknown>;
    let ref: string;
    if (e.kind === 'tag.set' && typeof e.data?.scope === 'string' && typeof e.data.tag === 'string' && e.digest) {
      const tag = e.data.tag;
      const digest = e.digest;
      image = e.data.scope;
      if (!this.#images(image) || !this.#tags(tag)) return false;
      ref = tag;
      run = async (c) => {
        const m = await pushManifest(c, digest);
        if (m) await c.remote.putManifest(c.remoteName, tag, m.mediaType, m.bytes);
      };
    } else if (e.kind === 'asset.put' && e.path && REFERRER_PATH.test(e.path)) {
      const [, img, subject] = REFERRER_PATH.exec(e.path)!;
      image = img;
      if (!this.#images(image)) return false;
      ref = subject;
      run = (c) => pushReferrers(c, subject);
    } else {
      return false;
    }
    this.status.state = 'pushing';
    const remoteName = this.rule.prefix ? `${this.rule.prefix.replace(/\/+$/, '')}/${image}` : image;
    await run({ s: this.#s, repo, image, remote: this.#remote, remoteName, done: new Set(), blobsPushed: 0 });
    this.status.lastPushed = { image, ref, digest: e.digest ?? '', at: new Date().toISOString() };
    this.status.state = 'idle';
    return true;
  }
}
