/**
 * One pull-mirroring rule: every `intervalSeconds`, each named image's matching tags are copied from the remote
 * (pull.ts). A failed pass is retried with exponential backoff (capped at the interval), its error in the status.
 */
import { Backoff, RuleWorker, remoteName } from './rule-worker.ts';
import { pullImage } from './pull.ts';

/** Pull rules read the remote every 5 minutes unless told otherwise. */
const DEFAULT_INTERVAL_S = 300;

export class PullWorker extends RuleWorker {
  protected async run(): Promise<void> {
    const intervalMs = (this.rule.intervalSeconds ?? DEFAULT_INTERVAL_S) * 1000;
    const backoff = new Backoff(intervalMs);
    while (!this.aborted) {
      try {
        this.status.state = 'pushing';
        this.status.attempts++;
        await this.pass();
        this.status.attempts = 0;
        this.status.lastError = null;
        this.status.state = 'idle';
        backoff.reset();
        await this.sleep(intervalMs);
      } catch (e) {
        const ms = backoff.take();
        this.failed(e, 'pull failed: ', ms);
        await this.sleep(ms);
      }
    }
    this.status.state = 'stopped';
  }

  /** One pass over every image of the rule. */
  async pass(): Promise<void> {
    const repo = await this.s.repos.get(this.rule.repository);
    if (!repo || repo.format !== 'oci' || repo.kind !== 'hosted') throw new Error(`pull mirror ${this.rule.name}: ${this.rule.repository} is not a hosted OCI repository`);
    for (const image of this.rule.images) {
      const copied = await pullImage({ s: this.s, repo, image, remote: this.remote, remoteName: remoteName(this.rule, image), actor: `mirror:${this.rule.name}` }, this.rule.tags);
      this.copied(copied, { image, ref: '*', digest: '', at: new Date().toISOString() });
    }
  }
}
