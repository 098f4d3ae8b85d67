/**
 * The OCI benchmark's requests/s loop, kept apart so every requests/s figure in its table — each server's and the
 * raw node:http ceiling's — comes from the same code.
 */
import { Agent, type OutgoingHttpHeaders } from 'node:http';
import { send } from './http-client.ts';
import type { BenchOptions } from './oci-options.ts';

/**
 * Requests/s: `connections` workers on one keep-alive agent, each sending the next request when the last one
 * finished, until `maxRequests` were sent or `seconds` passed. A short warm-up run comes first. Any status
 * other than `status` fails the measurement.
 */
export async function load(o: BenchOptions, req: { method: string; url: string; headers: OutgoingHttpHeaders }, status: number): Promise<number> {
  const run = async (seconds: number, max: number): Promise<number> => {
    const agent = new Agent({ keepAlive: true, maxSockets: o.connections });
    let issued = 0;
    let done = 0;
    const deadline = performance.now() + seconds * 1000;
    const t0 = performance.now();
    const worker = async () => {
      while (issued < max && performance.now() < deadline) {
        issued++;
        const res = await send({ ...req, agent, discard: true });
        if (res.status !== status) throw new Error(`${req.method} ${req.url}: HTTP ${res.status}`);
        done++;
      }
    };
    try {
      await Promise.all(Array.from({ length: o.connections }, worker));
    } finally {
      agent.destroy();
    }
    return done / ((performance.now() - t0) / 1000);
  };
  await run(Math.min(1, o.seconds), Math.max(o.connections * 10, Math.floor(o.maxRequests / 20)));
  return run(o.seconds, o.maxRequests);
}
