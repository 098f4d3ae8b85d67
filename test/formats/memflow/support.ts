/** Test helper: the openssl lab of the trust tests, plus a skip reason when curl is missing. */
import { spawnSync } from 'node:child_process';
export { Lab, N, OPENSSL_MISSING, asn1RS, derOf } from '../../trust/openssl.ts';

export const missingCurl: string | false =
  spawnSync('curl', ['--version']).status === 0 ? false : 'curl is not on PATH (apt-get install -y curl) — the README upload flow runs it';
