/**
 * A small bounded map whose entries expire, for per-request lookups (tokens, roles, repositories) that would
 * otherwise hit the database several times per request. Callers clear it on their own writes; the TTL bounds
 * how long a change made elsewhere (another node, the CLI on the data dir) can go unseen.
 */
export class TtlCache<K, V> {
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #map = new Map<K, { value: V; until: number }>();

  constructor(opts: { ttlMs: number; max: number }) {
    this.#ttlMs = opts.ttlMs;
    this.#max = opts.max;
  }

  get(key: K): V | undefined {
    const e = this.#map.get(key);
    if (!e) return undefined;
    if (e.until <= Date.now()) {
      this.#map.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: K, value: V): void {
    if (this.#map.size >= this.#max) this.#map.delete(this.#map.keys().next().value!);
    this.#map.set(key, { value, until: Date.now() + this.#ttlMs });
  }

  clear(): void {
    this.#map.clear();
  }
}
