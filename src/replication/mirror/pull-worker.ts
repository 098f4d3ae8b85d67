/**
 * One pull-mirroring rule: every `intervalSeconds`, each named image's matching tags are copied from the remote
 * (pull.ts). A failed pass is retried with exponential backoff (capped at the interval), its error in the status.
 */
import type { Counter } from 'prom-client';
import type { Services } from '../../server/services.ts';
import { RegistryClient } from './registry-client.ts';
import { pullImage } from './pull.ts';
import type { MirrorRule, MirrorStatus } from './worker.ts';

export class PullWorker {
  readonly rule: MirrorRule;
  readonly status: MirrorStatus;
  readonly #s: Services;
  readonly #remote: RegistryClient;
  readonly #pushes: Counter<'rule' | 'result'>;
  readonly #abort = new AbortController();
  #loop: Promise<void> | null = null;

  constructor(s: Services, rule: MirrorRule, pushes: Counter<'rule' | 'result'>) {
    this.#s = s;
    this.rule = rule;
    this.#pushes = pushes;
    this.#remote = new RegistryClient(rule.url, rule);
    this.status = { name: rule.name, repository: rule.repository, url: rule.url, state: 'starting', position: 0, pushed: 0, attempts: 0, lastPushed: null, lastError: null };
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
    let backoff = 500;
    while (!this.#abort.signal.aborted) {
      try {
        this.status.state = 'pushing';
        this.status.attempts++;
        await this.pass();
        this.status.attempts = 0;
        this.status.lastError = null;
        this.status.state = 'idle';
        backoff = 500;
        await this.#sleep(this.rule.intervalSeconds * 1000);
      } catch (e) {
        const cause = (e as Error & { cause?: Error }).cause;
        this.status.lastError = `${(e as Error).message}${cause ? ` (${cause.message})` : ''}`;
        this.status.state = 'retrying';
        this.#pushes.inc({ rule: this.rule.name, result: 'error' });
        this.#s.log.warn({ rule: this.rule.name }, `mirror: pull failed: ${this.status.lastError}; retrying in ${backoff} ms`);
        await this.#sleep(backoff);
        backoff = Math.min(backoff * 2, this.rule.intervalSeconds * 1000);
      }
    }
    this.status.state = 'stopped';
  }

  /** One pass over every image of the rule. */
  async pass(): Promise<void> {
    const repo = await this.#s.repos.get(this.rule.repository);
    if (!repo || repo.format !== 'oci' || repo.kind !== 'hosted') throw new Error(`pull mirror ${this.rule.name}: ${this.rule.repository} is not a hosted OCI repository`);
    for (const image of this.rule.images) {
      const remoteName = this.rule.prefix ? `${this.rule.prefix.replace(/\/+$/, '')}/${image}` : image;
      const copied = await pullImage({ s: this.#s, repo, image, remote: this.#remote, remoteName, actor: `mirror:${this.rule.name}` }, this.rule.tags);
      if (copied) {
        this.status.pushed += copied;
        this.#pushes.inc({ rule: this.rule.name, result: 'ok' }, copied);
        this.status.lastPushed = { image, ref: '*', digest: '', at: new Date().toISOString() };
      }
    }
  }
}
