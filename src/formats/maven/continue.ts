/**
 * `Expect: 100-continue`, as Maven sends on every PUT. Node answers 100 by itself the moment the headers
 * arrive — before authentication — so a refused deploy (bad credentials, redeploy of a release, wrong policy)
 * would still make the client send the whole body. For paths under the Maven prefix this module takes over
 * Node's `checkContinue` event: the request goes through the normal pipeline without a 100, and the handler
 * sends it (`sendContinue`) only when it is about to read the body. A request refused earlier gets its final
 * status instead of 100, and Node closes that connection since the body was never sent. Every other path
 * keeps Node's default (100 at once).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

const PREFIXES = Symbol('granary.maven.continuePrefixes');
type Marked = Server & { [PREFIXES]?: string[] };

export function deferContinue(server: Server, prefix: string): void {
  const s = server as Marked;
  if (s[PREFIXES]) {
    s[PREFIXES].push(prefix);
    return;
  }
  const prefixes = (s[PREFIXES] = [prefix]);
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    if (!prefixes.some((p) => url.startsWith(`${p}/`))) res.writeContinue();
    server.emit('request', req, res);
  });
}

const continued = new WeakSet<ServerResponse>();

/** Tells a client waiting on `Expect: 100-continue` to send the body; a no-op otherwise, and only once. */
export function sendContinue(req: IncomingMessage, res: ServerResponse): void {
  if (!/100-continue/i.test(String(req.headers.expect ?? '')) || continued.has(res) || res.headersSent) return;
  continued.add(res);
  res.writeContinue();
}
