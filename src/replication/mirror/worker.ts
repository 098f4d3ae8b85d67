/**
 * One push-mirroring rule: follows the local event log of its repository and copies each matching tag (and each
 * referrer added later) to the remote registry, in log order. A failed copy is retried with exponential backoff
 * (capped) without moving on, so the remote never sees a later change before an earlier one; the position is
 * kept in `settings`, so a restart resumes where the rule stood (copies are idempotent either way).
 *
 * With `intervalSeconds`, the same loop also runs a reconciliation pass (reconcile.ts) when one is due — at start,
 * then every interval — so it never races an event copy for the same tag. A failed pass is recorded and tried
 * again after the backoff; event copies go on meanwhile.
 */
import picomatch from 'picomatch';
import { Counter, type Registry } from 'prom-client';
import type { Services } from '../../server/services.ts';
import { listEvents, type Event } from '../../meta/events.ts';
import { getSetting, setSetting } from '../../meta/settings.ts';
import { pushReferrers, pushTag, type PushContext } from './push.ts';
import { reconcile } from './reconcile.ts';
import { Backoff, RuleWorker, remoteName, type MirrorRule } from './rule-worker.ts';

export type { MirrorRule, MirrorStatus } from './rule-worker.ts';

const POLL_MS = 500;
const REFERRER_PATH = /^(.+)\/_referrers\/(sha256:[0-9a-f]{64})\/(sha256:[0-9a-f]{64})$/;

export function mirrorMetrics(registry: Registry): Counter<'rule' | 'result'> {
  return new Counter({ name: 'granary_mirror_pushes_total', help: 'Mirror copies by rule and result (ok, error)', labelNames: ['rule', 'result'] as const, registers: [registry] });
}

export class MirrorWorker extends RuleWorker {
  readonly #images: (s: string) => boolean;
  readonly #tags: (s: string) => boolean;
  /** When the next reconciliation pass is due (epoch ms); Infinity for an event-only rule. */
  #reconcileAt: number;
  readonly #reconcileBackoff = new Backoff();

  constructor(s: Services, rule: MirrorRule, pushes: Counter<'rule' | 'result'>) {
    super(s, rule, pushes);
    this.#images = picomatch(rule.images.length ? rule.images : ['**']);
    this.#tags = picomatch(rule.tags.length ? rule.tags : ['**']);
    this.#reconcileAt = rule.intervalSeconds ? 0 : Infinity;
  }

  get #key(): string {
    return `mirror.${this.rule.name}.position`;
  }

  protected async run(): Promise<void> {
    this.status.position = Number((await getSetting(this.s.meta.db, this.#key).catch(() => null)) ?? 0);
    while (!this.aborted) {
      if (Date.now() >= this.#reconcileAt) await this.#reconcile();
      // The whole log, not only this repository's events: the position then says how far the rule has looked.
      const events = await listEvents(this.s.meta.db, { since: this.status.position, limit: 500 }).catch(() => []);
      if (!events.length) {
        this.status.state = this.status.lastError ? this.status.state : 'idle';
        await this.sleep(Math.max(0, Math.min(POLL_MS, this.#reconcileAt - Date.now())));
        continue;
      }
      for (const e of events) {
        if (this.aborted) break;
        if (e.repo !== this.rule.repository) {
          this.status.position = e.seq;
          continue;
        }
        await this.#withRetry(e);
        this.status.position = e.seq;
        await setSetting(this.s.meta.db, this.#key, String(e.seq)).catch(() => {});
      }
      await setSetting(this.s.meta.db, this.#key, String(this.status.position)).catch(() => {});
    }
    this.status.state = 'stopped';
  }

  async #withRetry(e: Event): Promise<void> {
    const backoff = new Backoff();
    for (;;) {
      if (this.aborted) return;
      try {
        this.status.attempts++;
        await this.#copy(e);
        this.status.lastError = null;
        this.status.attempts = 0;
        return;
      } catch (err) {
        const ms = backoff.take();
        this.failed(err, '', ms, { seq: e.seq });
        await this.sleep(ms);
      }
    }
  }

  /** One reconciliation pass; a failure schedules the next try after the backoff instead of the interval. */
  async #reconcile(): Promise<void> {
    const repo = await this.s.repos.get(this.rule.repository).catch(() => null);
    this.status.state = 'reconciling';
    this.status.attempts++;
    try {
      if (!repo || repo.format !== 'oci') throw new Error(`push mirror ${this.rule.name}: ${this.rule.repository} is not an OCI repository`);
      const r = await reconcile({
        s: this.s,
        repo,
        remote: this.remote,
        remoteName: (image) => remoteName(this.rule, image),
        images: this.#images,
        tags: this.#tags,
        stopped: () => this.aborted,
        onCopied: (image, ref, digest) => this.copied(1, { image, ref, digest, at: new Date().toISOString() }),
      });
      if (this.aborted) return;
      this.status.reconciliations++;
      this.status.lastReconciled = { at: new Date().toISOString(), ...r };
      this.status.lastError = null;
      this.status.attempts = 0;
      this.status.state = 'idle';
      this.#reconcileBackoff.reset();
      this.#reconcileAt = Date.now() + this.rule.intervalSeconds! * 1000;
    } catch (err) {
      const ms = this.#reconcileBackoff.take();
      this.failed(err, 'reconciliation failed: ', ms);
      this.#reconcileAt = Date.now() + ms;
    }
  }

  /** Copies what the event changed, if the rule covers it. */
  async #copy(e: Event): Promise<void> {
    const repo = await this.s.repos.get(this.rule.repository);
    if (!repo || repo.format !== 'oci') return;
    let image: string;
    let run: (c: PushContext) => Promise<unknown>;
    let ref: string;
    if (e.kind === 'tag.set' && typeof e.data?.scope === 'string' && typeof e.data.tag === 'string' && e.digest) {
      const tag = e.data.tag;
      const digest = e.digest;
      image = e.data.scope;
      if (!this.#images(image) || !this.#tags(tag)) return;
      ref = tag;
      run = (c) => pushTag(c, tag, digest);
    } else if (e.kind === 'asset.put' && e.path && REFERRER_PATH.test(e.path)) {
      const [, img, subject] = REFERRER_PATH.exec(e.path)!;
      image = img;
      if (!this.#images(image)) return;
      ref = subject;
      run = (c) => pushReferrers(c, subject);
    } else {
      return;
    }
    this.status.state = 'pushing';
    await run({ s: this.s, repo, image, remote: this.remote, remoteName: remoteName(this.rule, image), done: new Set(), blobsPushed: 0 });
    this.copied(1, { image, ref, digest: e.digest ?? '', at: new Date().toISOString() });
    this.status.state = 'idle';
  }
}
