/**
 * A raw node:http request that sends `Expect: 100-continue` and its body only once the server answers 100 —
 * recording what arrived in which order, so a test can tell "refused before the body" from "asked for it".
 */
import http from 'node:http';

export interface Exchange {
  /** 'continue' and 'response <status>', in order. */
  events: string[];
  status: number;
  statusText: string;
  /** Milliseconds from sending the headers to the 100 Continue (reported, not asserted). */
  continueMs?: number;
}

export function sendExpecting(
  port: number,
  path: string,
  body: string,
  auth: string | null,
  opts: { method?: string; headers?: Record<string, string> } = {},
): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const events: string[] = [];
    const t0 = performance.now();
    let continueMs: number | undefined;
    const req = http.request({
      host: '127.0.0.1',
      port,
      method: opts.method ?? 'PUT',
      path,
      headers: { expect: '100-continue', 'content-length': Buffer.byteLength(body), ...(auth ? { authorization: auth } : {}), ...opts.headers },
    });
    req.on('continue', () => {
      continueMs = performance.now() - t0;
      events.push('continue');
      req.end(body);
    });
    req.on('response', (res) => {
      events.push(`response ${res.statusCode}`);
      res.resume();
      res.on('end', () => {
        if (!req.writableEnded) req.destroy();
        resolve({ events, status: res.statusCode!, statusText: res.statusMessage ?? '', continueMs });
      });
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}
