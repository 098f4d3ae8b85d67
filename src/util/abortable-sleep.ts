/**
 * A pause that ends early when `signal` aborts (resolving, never rejecting), for loops that stop() must be able to
 * interrupt. The abort listener is removed when the timer fires, so a long-running loop does not pile them up.
 */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
