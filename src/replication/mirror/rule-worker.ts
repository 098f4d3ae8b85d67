/**
 * What every mirroring rule's worker shares: the rule and its status, the remote client, an abortable sleep, the
 * capped exponential backoff, and how a failure is recorded (status, metric, log). Push (worker.ts) and pull
 * (pull-worker.ts) workers differ only in what they copy and when.
 */
import type { Counter } from 'prom-client';
import type { Services } from '../../server/services.ts';
import { RegistryClient } from './registry-client.ts';
import { abortableSleep } from '../../util/abortable-sleep.ts';

export interface MirrorRule {
  name: string;
  direction: 'push' | 'pull';
  /** Pull rules: how often the remote is read (default 300). Push rules: how often to reconcile; absent = events only. */
  intervalSeconds?: number;
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
  state: 'starting' | 'idle' | 'pushing' | 'reconciling' | 'retrying' | 'stopped';
  position: number;
  pushed: number;
  attempts: number;
  lastPushed: { image: string; ref: string; digest: string; at: string } | null;
  lastError: string | null;
  /** Scheduled push rules: completed reconciliation passes, and what the last one found. */
  reconciliations: number;
  lastReconciled: { at: string; tags: number; copied: number } | null;
}

export const FIRST_BACKOFF_MS = 500;
export const MAX_BACKOFF_MS = 60_000;

/** Exponential backoff from 0.5 s, doubling up to `maxMs`; reset after a success. */
export class Backoff {
  readonly #maxMs: number;
  #next = FIRST_BACKOFF_MS;
  constructor(maxMs = MAX_BACKOFF_MS) {
    this.#maxMs = maxMs;
  }
  /** The delay to wait now; the following one doubles. */
  take(): number {
    const ms = this.#next;
    this.#next = Math.min(this.#next * 2, this.#maxMs);
    return ms;
  }
  reset(): void {
    this.#next = FIRST_BACKOFF_MS;
  }
}

export const remoteName = (rule: MirrorRule, image: string): string => (rule.prefix ? `${rule.prefix.replace(/\/+$/, '')}/${image}` : image);

export abstract class RuleWorker {
  readonly rule: MirrorRule;
  readonly status: MirrorStatus;
  protected readonly s: Services;
  protected readonly remote: RegistryClient;
  protected readonly pushes: Counter<'rule' | 'result'>;
  readonly #abort = new AbortController();
  #loop: Promise<void> | null = null;

  constructor(s: Services, rule: MirrorRule, pushes: Counter<'rule' | 'result'>) {
    this.s = s;
    this.rule = rule;
    this.pushes = pushes;
    this.remote = new RegistryClient(rule.url, rule);
    this.status = {
      name: rule.name,
      repository: rule.repository,
      url: rule.url,
      state: 'starting',
      position: 0,
      pushed: 0,
      attempts: 0,
      lastPushed: null,
      lastError: null,
      reconciliations: 0,
      lastReconciled: null,
    };
  }

  /** The worker's loop; it returns once `aborted` is set, after setting the state to stopped. */
  protected abstract run(): Promise<void>;

  get aborted(): boolean {
    return this.#abort.signal.aborted;
  }

  start(): void {
    this.#loop = this.run();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
    await this.remote.close();
  }

  protected sleep(ms: number): Promise<void> {
    return abortableSleep(ms, this.#abort.signal);
  }

  /** Records a failed attempt (status, metric, log) that will be retried in `retryMs`. */
  protected failed(err: unknown, what: string, retryMs: number, fields: Record<string, unknown> = {}): void {
    const cause = (err as Error & { cause?: Error }).cause;
    this.status.lastError = `${(err as Error).message}${cause ? ` (${cause.message})` : ''}`;
    this.status.state = 'retrying';
    this.pushes.inc({ rule: this.rule.name, result: 'error' });
    this.s.log.warn({ rule: this.rule.name, ...fields }, `mirror: ${what}${this.status.lastError}; retrying in ${retryMs} ms`);
  }

  /** Counts `n` successful copies (status and metric). */
  protected copied(n: number, last: MirrorStatus['lastPushed']): void {
    if (!n) return;
    this.status.pushed += n;
    this.pushes.inc({ rule: this.rule.name, result: 'ok' }, n);
    this.status.lastPushed = last;
  }
}
