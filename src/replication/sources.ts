/**
 * Fetching blobs by digest from other nodes: the primary first, then each further source in order, the first
 * that has it wins. Bytes stream straight into the local blob store, which verifies digest and size before the
 * blob becomes visible — a source can be wrong or hostile, never trusted.
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Agent, fetch as undiciFetch, type RequestInit, type Response } from 'undici';
import type { BlobStore, PutResult } from '../blobs/types.ts';

export interface FetchOutcome {
  source: string;
  result: 'ok' | 'missing' | 'error';
}

export class BlobUnavailableError extends Error {}

export class BlobSources {
  readonly urls: readonly string[];
  readonly #token: string | undefined;
  readonly #onOutcome: (o: FetchOutcome) => void;
  /** One fetch per digest at a time: concurrent readers of a lazy blob share it. */
  readonly #inFlight = new Map<string, Promise<PutResult>>();
  /**
   * Replication's own connection pool, closed on stop: kept-alive sockets of an aborted long poll would otherwise
   * hold the other node's graceful shutdown until its keep-alive timeout.
   */
  readonly #agent = new Agent({ keepAliveTimeout: 4_000 });

  constructor(urls: readonly string[], token: string | undefined, onOutcome: (o: FetchOutcome) => void = () => {}) {
    this.urls = urls.map((u) => u.replace(/\/+$/, ''));
    this.#token = token;
    this.#onOutcome = onOutcome;
  }

  headers(): Record<string, string> {
    return this.#token ? { authorization: `Bearer ${this.#token}` } : {};
  }

  /** A request to another node, with the replication credentials, over the replication pool. */
  fetch(url: string, init: RequestInit = {}): Promise<Response> {
    return undiciFetch(url, { ...init, headers: { ...this.headers(), ...(init.headers as Record<string, string> | undefined) }, dispatcher: this.#agent });
  }

  async close(): Promise<void> {
    await this.#agent.destroy();
  }

  /** Stores the blob locally from the first source that has it; throws BlobUnavailableError naming each failure. */
  fetchInto(store: BlobStore, digest: string, size?: number): Promise<PutResult> {
    let p = this.#inFlight.get(digest);
    if (!p) {
      p = this.#fetch(store, digest, size).finally(() => this.#inFlight.delete(digest));
      this.#inFlight.set(digest, p);
    }
    return p;
  }

  async #fetch(store: BlobStore, digest: string, size?: number): Promise<PutResult> {
    const failures: string[] = [];
    for (const source of this.urls) {
      let res: Response;
      try {
        res = await this.fetch(`${source}/api/v1/replication/blobs/${digest}`, { signal: AbortSignal.timeout(30_000) });
      } catch (e) {
        this.#onOutcome({ source, result: 'error' });
        failures.push(`${source}: ${(e as Error).cause ? String((e as Error & { cause: Error }).cause.message) : (e as Error).message}`);
        continue;
      }
      if (res.status !== 200 || !res.body) {
        await res.body?.cancel();
        this.#onOutcome({ source, result: res.status === 404 ? 'missing' : 'error' });
        failures.push(`${source}: HTTP ${res.status}`);
        continue;
      }
      try {
        const r = await store.put(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), {
          expectedDigest: digest,
          ...(size !== undefined && Number.isFinite(size) ? { expectedSize: size } : {}),
        });
        this.#onOutcome({ source, result: 'ok' });
        return r;
      } catch (e) {
        this.#onOutcome({ source, result: 'error' });
        failures.push(`${source}: ${(e as Error).message}`);
      }
    }
    throw new BlobUnavailableError(`blob ${digest} is on none of the sources (${failures.join('; ') || 'no sources'})`);
  }
}
